// Backup and restore of a node's data dir (docs/operations.md, "Backup and restore"), and the
// data-dir lock that keeps two outpostd processes, or a restore and a running outpostd, off one
// data dir. A restored node is fenced (Ledger::check_fence; docs/architecture.md, failure rule 7)
// until it has learned from its peers which of its own ops the chain holds. Used by the `outpost`
// CLI and outpostd; not thread-safe (one caller per data dir, which the lock enforces).
#pragma once

#include <string>

#include "outpost/base/status.h"
#include "outpost/node/ledger.h"

namespace outpost::node {

inline constexpr const char* kLockFile = "outpostd.lock";

// An exclusive advisory lock (flock) on DATA_DIR/outpostd.lock, held while the object lives.
// The kernel drops it when the process dies, even by kill -9, so it never goes stale.
class DataDirLock {
 public:
  // Takes the lock. kUnavailable when another process holds it (names the file); kIoError when
  // the lock file cannot be created.
  static Result<DataDirLock> acquire(const std::string& dir);
  // True when another process holds the lock now (an outpostd runs on `dir`).
  static Result<bool> held_by_other(const std::string& dir);

  DataDirLock(DataDirLock&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  DataDirLock& operator=(DataDirLock&& other) noexcept;
  DataDirLock(const DataDirLock&) = delete;
  DataDirLock& operator=(const DataDirLock&) = delete;
  ~DataDirLock();

 private:
  explicit DataDirLock(int fd) : fd_(fd) {}
  int fd_ = -1;
};

// `outpost backup --out FILE`: writes a consistent copy of the data dir's database (while
// outpostd runs, too) to FILE, marked so that a node started from it is fenced until it has heard
// from HQ. The key files are not in it (they never change; back them up once, separately).
// kInvalidArgument if FILE exists. Returns a summary: file, own seq, ops, bytes.
Result<Json> backup_data_dir(const std::string& dir, const std::string& out_file);

// `outpost restore FILE`: replaces the data dir's database with the backup FILE, after checking
// that no outpostd runs on the dir (kUnavailable), that FILE is an Outpost database of this very
// node (its key matches node.key; kInvalidArgument otherwise). The replaced database is kept
// beside it as outpost.db.replaced-<ms>. The restored node is fenced until it has heard from HQ.
// Returns a summary: own seq restored, ops, where the old database went.
Result<Json> restore_data_dir(const std::string& dir, const std::string& backup_file, sync::Clock& clock);

}  // namespace outpost::node
