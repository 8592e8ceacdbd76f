#include "outpost/node/backup.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "outpost/base/files.h"
#include "outpost/crypto/crypto.h"
#include "outpost/node/log.h"

namespace outpost::node {

namespace fs = std::filesystem;

namespace {

std::string in_dir(const std::string& dir, const std::string& file) { return (fs::path(dir) / file).string(); }

void remove_quietly(const std::string& path) {
  std::error_code ec;
  fs::remove(path, ec);
}

// Own identity and log position of a database file: checks it is a database of the node whose
// signing key is `key`.
struct DbSummary {
  std::string node_id;
  std::uint64_t own_seq = 0;
  std::uint64_t ops = 0;
};

Result<DbSummary> summarize(storage::Store& store, const crypto::PublicKey& key, const std::string& what) {
  OUTPOST_ASSIGN_OR_RETURN(auto id_hex, store.get_meta("node_id"));
  OUTPOST_ASSIGN_OR_RETURN(auto pk_hex, store.get_meta("signing_public_key"));
  if (!id_hex || !pk_hex) return Status::invalid(what + " holds no node identity: not an Outpost node database");
  if (*pk_hex != crypto::to_hex(key)) {
    return Status::invalid(what + " is a backup of another node (" + *id_hex +
                           "); a node can only be restored from its own backup");
  }
  auto id = sync::parse_id(*id_hex);
  if (!id.is_ok()) return Status::invalid(what + ": its node id is damaged");
  DbSummary s;
  s.node_id = *id_hex;
  OUTPOST_ASSIGN_OR_RETURN(storage::Head head, store.head(*id));
  s.own_seq = head.seq;
  OUTPOST_ASSIGN_OR_RETURN(s.ops, store.op_count());
  return s;
}

}  // namespace

DataDirLock& DataDirLock::operator=(DataDirLock&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = other.fd_;
    other.fd_ = -1;
  }
  return *this;
}

DataDirLock::~DataDirLock() {
  if (fd_ >= 0) ::close(fd_);  // closing the descriptor releases the flock
}

Result<DataDirLock> DataDirLock::acquire(const std::string& dir) {
  const std::string path = in_dir(dir, kLockFile);
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return Status::io_error("cannot create lock file " + path + ": " + std::strerror(errno));
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    ::close(fd);
    if (err == EWOULDBLOCK) {
      return Status::unavailable("another outpostd (or an outpost restore) is using data dir " + dir + " (" + path +
                                 " is locked)");
    }
    return Status::io_error("cannot lock " + path + ": " + std::strerror(err));
  }
  return DataDirLock(fd);
}

Result<bool> DataDirLock::held_by_other(const std::string& dir) {
  auto lock = acquire(dir);
  if (lock.is_ok()) return false;
  if (lock.status().code() == Code::kUnavailable) return true;
  return lock.status();
}

Result<Json> backup_data_dir(const std::string& dir, const std::string& out_file) {
  if (out_file.empty()) return Status::invalid("backup needs --out FILE");
  OUTPOST_ASSIGN_OR_RETURN(auto store, open_data_dir_store(dir));
  OUTPOST_ASSIGN_OR_RETURN(auto id_hex, store->get_meta("node_id"));
  OUTPOST_ASSIGN_OR_RETURN(auto taken, store->get_meta("hlc"));
  // The copy carries the fence mark: whatever way it is later put back, the node it becomes
  // signs nothing before it has heard from HQ.
  OUTPOST_RETURN_IF_ERROR(store->backup_to(out_file, {{"restored_awaiting_peer", "1"}}));
  auto copy = storage::Store::open(out_file, storage::OpenMode::kExisting);
  if (!copy.is_ok()) return copy.status().with_context("the backup just written does not open");
  auto id = sync::parse_id(id_hex.value_or(""));
  if (!id.is_ok()) return Status::corruption("data dir " + dir + " has a damaged node id");
  OUTPOST_ASSIGN_OR_RETURN(storage::Head head, (*copy)->head(*id));
  OUTPOST_ASSIGN_OR_RETURN(std::uint64_t ops, (*copy)->op_count());
  OUTPOST_RETURN_IF_ERROR((*copy)->make_single_file());  // reading it opened it in WAL mode
  copy->reset();
  std::error_code ec;
  const auto bytes = fs::file_size(out_file, ec);
  return Json{{"file", out_file}, {"node_id", id_hex.value_or("")}, {"own_seq", head.seq}, {"ops", ops},
              {"bytes", ec ? 0 : static_cast<std::uint64_t>(bytes)}};
}

Result<Json> restore_data_dir(const std::string& dir, const std::string& backup_file, sync::Clock& clock) {
  if (backup_file.empty()) return Status::invalid("restore needs the backup FILE");
  std::error_code ec;
  if (!fs::is_regular_file(backup_file, ec)) return Status::not_found("backup " + backup_file + " does not exist");
  if (!fs::is_directory(dir, ec)) return Status::not_found("data dir " + dir + " does not exist");
  // Held for the whole restore: outpostd cannot start on the dir meanwhile.
  OUTPOST_ASSIGN_OR_RETURN(DataDirLock lock, DataDirLock::acquire(dir));
  OUTPOST_ASSIGN_OR_RETURN(crypto::SigningKey key, crypto::read_signing_key(in_dir(dir, kSigningKeyFile)));

  const std::string db = in_dir(dir, kDbFile);
  const std::string staged = db + ".restoring";
  remove_quietly(staged);
  remove_quietly(staged + "-wal");
  remove_quietly(staged + "-shm");
  fs::copy_file(backup_file, staged, ec);
  if (ec) return Status::io_error("cannot copy " + backup_file + " into " + dir + ": " + ec.message());
  DbSummary summary;
  {
    auto store = storage::Store::open(staged, storage::OpenMode::kExisting);
    if (!store.is_ok()) {
      remove_quietly(staged);
      return Status::invalid(backup_file + " is not a usable Outpost database: " + store.status().message());
    }
    auto s = summarize(**store, key.public_key(), backup_file);
    Status st = s.is_ok() ? Ledger::mark_restored(**store) : s.status();
    if (st.is_ok()) st = (*store)->checkpoint_wal();
    if (!st.is_ok()) {
      store->reset();
      remove_quietly(staged);
      remove_quietly(staged + "-wal");
      remove_quietly(staged + "-shm");
      return st;
    }
    summary = *s;
  }
  // Keep the database being replaced: restoring must never destroy data.
  std::string replaced;
  if (fs::exists(db, ec)) {
    replaced = db + ".replaced-" + std::to_string(clock.now_ms());
    fs::rename(db, replaced, ec);
    if (ec) return Status::io_error("cannot move the current database aside: " + ec.message());
    for (const char* suffix : {"-wal", "-shm"}) {
      if (fs::exists(db + suffix, ec)) fs::rename(db + suffix, replaced + suffix, ec);
    }
  }
  fs::rename(staged, db, ec);
  if (ec) return Status::io_error("cannot put the restored database in place: " + ec.message());
  remove_quietly(staged + "-wal");
  remove_quietly(staged + "-shm");
  OUTPOST_RETURN_IF_ERROR(fsync_dir(dir));
  log(LogLevel::kWarn, "data dir restored from a backup; signing is fenced until HQ is heard",
      {{"backup", backup_file}, {"own_seq", std::to_string(summary.own_seq)}});
  return Json{{"node_id", summary.node_id}, {"own_seq", summary.own_seq}, {"ops", summary.ops},
              {"replaced", replaced}, {"fenced", true}};
}

}  // namespace outpost::node
