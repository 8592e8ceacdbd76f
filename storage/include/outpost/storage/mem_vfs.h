// MemVfs: an in-memory SQLite VFS that can lose power. Every file keeps two images: what reads
// see (every write so far) and what was synced (the image at its last xSync). power_loss() throws
// every unsynced write away, as a machine losing power loses its page cache, so a test or the
// simulator can check failure rule 4 (docs/architecture.md: no acknowledged op lost, and the
// database opens afterwards) against the real Store. docs/simulator.md, "Power loss".
//
// The model, conservative where a disk may be kinder: a write or truncate is durable only after
// an xSync of that file; a new file exists after a power loss only once it was synced (as if
// SQLite's directory sync went with its first file sync); a delete is durable at once (SQLite
// deletes a file only when it no longer needs it). Shared memory (the WAL index) is never
// durable: SQLite rebuilds it from the WAL after a power loss.
//
// Registered under its name with sqlite3_vfs_register, never as the default: only a Store opened
// with that VFS name (StoreOptions::vfs) uses it. Not thread-safe: one thread drives every
// connection on it (the simulator's).
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "outpost/base/status.h"

namespace outpost::storage {

class MemVfs {
 public:
  struct File;  // one file's images, locks and shared memory (mem_vfs.cc)
  struct Handle;

  // Registers a VFS called `name`. Fails with kInvalid if a VFS of that name exists.
  static Result<std::unique_ptr<MemVfs>> create(const std::string& name);
  // Unregisters the VFS. Every connection on it must be closed first.
  ~MemVfs();
  MemVfs(const MemVfs&) = delete;
  MemVfs& operator=(const MemVfs&) = delete;

  const std::string& name() const { return name_; }

  // Cuts the power: every write not yet synced is dropped (files never synced vanish), the shared
  // memory is cleared, and every file handle opened before fails each later call with an I/O
  // error, as the dead process's would. Connections open then must be closed before power_on().
  // Returns the number of files that lost writes (as unsynced_files() counts them).
  std::size_t power_loss();
  // Lets new connections open files again after power_loss(). Until then every open fails.
  void power_on() { powered_ = true; }
  bool powered() const { return powered_; }
  // Arms a power loss at the `writes`-th next xWrite (1: the very next one): that write is not
  // made, the call fails, and power_loss() happens then. 0 disarms it.
  void crash_at_write(std::uint64_t writes) { crash_countdown_ = writes; }
  // A disk that lies (the simulator's negative control, docs/simulator.md): while false, xSync
  // reports success and keeps nothing, so a power loss drops what SQLite believes is durable.
  void set_syncs_persist(bool persist) { syncs_persist_ = persist; }

  // Puts a file in place as if written and synced (a database made on disk, copied in), replacing
  // any file of that name. For setting up tests; no connection may have it open.
  void put_file(const std::string& path, std::vector<std::uint8_t> bytes);

  // What the files hold now. For tests.
  bool exists(const std::string& path) const { return files_.count(path) > 0; }
  // The files with writes a power loss would drop (or that would vanish with it). An unsynced
  // truncate alone does not count, though a power loss undoes it too.
  std::vector<std::string> unsynced_files() const;
  std::uint64_t writes() const { return writes_; }
  std::uint64_t syncs() const { return syncs_; }

 private:
  explicit MemVfs(std::string name);
  static MemVfs& of(sqlite3_vfs* vfs) { return *static_cast<MemVfs*>(vfs->pAppData); }

  // sqlite3_vfs methods.
  static int x_open(sqlite3_vfs* vfs, const char* name, sqlite3_file* file, int flags,
                    int* out_flags);
  static int x_delete(sqlite3_vfs* vfs, const char* name, int sync_dir);
  static int x_access(sqlite3_vfs* vfs, const char* name, int flags, int* out);
  static int x_full_pathname(sqlite3_vfs* vfs, const char* name, int n, char* out);
  static int x_randomness(sqlite3_vfs* vfs, int n, char* out);
  static int x_sleep(sqlite3_vfs* vfs, int micros);
  static int x_current_time(sqlite3_vfs* vfs, double* out);
  static int x_get_last_error(sqlite3_vfs* vfs, int n, char* out);
  static int x_current_time_int64(sqlite3_vfs* vfs, sqlite3_int64* out);

  friend struct Handle;
  // Counts a write; returns false when it is the armed crash (power is then lost).
  bool count_write();

  std::string name_;
  sqlite3_vfs vfs_{};
  std::map<std::string, std::shared_ptr<File>> files_;
  std::uint64_t generation_ = 0;  // bumped by power_loss(): older handles are dead
  bool powered_ = true;
  std::uint64_t crash_countdown_ = 0;
  bool syncs_persist_ = true;
  std::uint64_t writes_ = 0;
  std::uint64_t syncs_ = 0;
  std::uint64_t temp_files_ = 0;
  // Shared-memory regions of files whose power went, kept until the VFS goes because a dead
  // connection may still hold pointers into them until it is closed.
  std::vector<std::vector<std::unique_ptr<char[]>>> retired_shm_;
};

}  // namespace outpost::storage
