#include "outpost/storage/mem_vfs.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <new>

namespace outpost::storage {

namespace {

constexpr int kLockNone = SQLITE_LOCK_NONE;
constexpr int kLockShared = SQLITE_LOCK_SHARED;
constexpr int kSectorBytes = 4096;

sqlite3_vfs& default_vfs() { return *sqlite3_vfs_find(nullptr); }

}  // namespace

struct MemVfs::File {
  std::vector<std::uint8_t> data;    // what reads see
  std::vector<std::uint8_t> synced;  // the image at the last xSync
  bool ever_synced = false;          // the file itself survives a power loss
  bool written = false;              // written since the last xSync
  // File locks (SQLite's SHARED / RESERVED / PENDING / EXCLUSIVE levels).
  int shared = 0;
  const Handle* reserved = nullptr;
  const Handle* pending = nullptr;
  const Handle* exclusive = nullptr;
  // Shared memory (the WAL index) and its SQLITE_SHM_NLOCK lock slots.
  std::vector<std::unique_ptr<char[]>> shm;
  std::array<int, SQLITE_SHM_NLOCK> shm_shared{};
  std::array<const Handle*, SQLITE_SHM_NLOCK> shm_exclusive{};
};

struct MemVfs::Handle {
  sqlite3_file base;  // first: SQLite sees a Handle* as a sqlite3_file*
  MemVfs* vfs;
  std::shared_ptr<File> file;
  std::string path;
  std::uint64_t generation;
  bool delete_on_close;
  int lock = kLockNone;
  std::uint32_t shm_shared_held = 0;
  std::uint32_t shm_exclusive_held = 0;

  static Handle& of(sqlite3_file* f) { return *reinterpret_cast<Handle*>(f); }
  // A handle opened before the last power loss belongs to a dead process.
  bool dead() const { return generation != vfs->generation_; }

  static int x_close(sqlite3_file* f) {
    Handle& h = of(f);
    if (!h.dead()) {
      release_shm_locks(h, 0, SQLITE_SHM_NLOCK);
      x_unlock(f, kLockNone);
      if (h.delete_on_close) h.vfs->files_.erase(h.path);
    }
    h.~Handle();
    return SQLITE_OK;
  }

  static int x_read(sqlite3_file* f, void* out, int n, sqlite3_int64 offset) {
    Handle& h = of(f);
    if (h.dead()) return SQLITE_IOERR_READ;
    const auto& d = h.file->data;
    const auto at = static_cast<std::size_t>(offset);
    const std::size_t have = at < d.size() ? std::min<std::size_t>(d.size() - at, n) : 0;
    if (have > 0) std::memcpy(out, d.data() + at, have);
    if (have == static_cast<std::size_t>(n)) return SQLITE_OK;
    // SQLite requires the unread tail zeroed on a short read.
    std::memset(static_cast<char*>(out) + have, 0, static_cast<std::size_t>(n) - have);
    return SQLITE_IOERR_SHORT_READ;
  }

  static int x_write(sqlite3_file* f, const void* in, int n, sqlite3_int64 offset) {
    Handle& h = of(f);
    if (h.dead() || !h.vfs->count_write()) return SQLITE_IOERR_WRITE;
    auto& d = h.file->data;
    const auto at = static_cast<std::size_t>(offset);
    if (d.size() < at + static_cast<std::size_t>(n)) d.resize(at + static_cast<std::size_t>(n));
    std::memcpy(d.data() + at, in, static_cast<std::size_t>(n));
    h.file->written = true;
    return SQLITE_OK;
  }

  static int x_truncate(sqlite3_file* f, sqlite3_int64 size) {
    Handle& h = of(f);
    if (h.dead()) return SQLITE_IOERR_TRUNCATE;
    // Not durable either; it only ever cuts off frames or pages SQLite no longer reads.
    h.file->data.resize(static_cast<std::size_t>(size));
    return SQLITE_OK;
  }

  static int x_sync(sqlite3_file* f, int) {
    Handle& h = of(f);
    if (h.dead()) return SQLITE_IOERR_FSYNC;
    ++h.vfs->syncs_;
    if (!h.vfs->syncs_persist_) return SQLITE_OK;
    h.file->synced = h.file->data;
    h.file->ever_synced = true;
    h.file->written = false;
    return SQLITE_OK;
  }

  static int x_file_size(sqlite3_file* f, sqlite3_int64* out) {
    Handle& h = of(f);
    if (h.dead()) return SQLITE_IOERR_FSTAT;
    *out = static_cast<sqlite3_int64>(h.file->data.size());
    return SQLITE_OK;
  }

  static int x_lock(sqlite3_file* f, int level) {
    Handle& h = of(f);
    if (h.dead()) return SQLITE_IOERR_LOCK;
    File& file = *h.file;
    if (level <= h.lock) return SQLITE_OK;
    if (level == kLockShared) {
      if ((file.exclusive && file.exclusive != &h) || (file.pending && file.pending != &h)) {
        return SQLITE_BUSY;
      }
      ++file.shared;
    } else if (level == SQLITE_LOCK_RESERVED) {
      if (file.reserved && file.reserved != &h) return SQLITE_BUSY;
      file.reserved = &h;
    } else {  // PENDING or EXCLUSIVE: wait out the other readers
      if (file.pending && file.pending != &h) return SQLITE_BUSY;
      file.pending = &h;
      if (file.shared > 1) {
        h.lock = SQLITE_LOCK_PENDING;
        return SQLITE_BUSY;
      }
      if (level == SQLITE_LOCK_EXCLUSIVE) file.exclusive = &h;
    }
    h.lock = level;
    return SQLITE_OK;
  }

  static int x_unlock(sqlite3_file* f, int level) {
    Handle& h = of(f);
    if (h.dead()) return SQLITE_OK;
    File& file = *h.file;
    if (level >= h.lock) return SQLITE_OK;
    if (file.exclusive == &h) file.exclusive = nullptr;
    if (file.pending == &h) file.pending = nullptr;
    if (file.reserved == &h) file.reserved = nullptr;
    if (level == kLockNone && h.lock >= kLockShared) --file.shared;
    h.lock = level;
    return SQLITE_OK;
  }

  static int x_check_reserved_lock(sqlite3_file* f, int* out) {
    Handle& h = of(f);
    if (h.dead()) return SQLITE_IOERR_CHECKRESERVEDLOCK;
    *out = h.file->reserved != nullptr && h.file->reserved != &h;
    return SQLITE_OK;
  }

  static int x_file_control(sqlite3_file*, int, void*) { return SQLITE_NOTFOUND; }
  static int x_sector_size(sqlite3_file*) { return kSectorBytes; }
  static int x_device_characteristics(sqlite3_file*) { return 0; }  // promise SQLite nothing

  static int x_shm_map(sqlite3_file* f, int region, int region_bytes, int extend,
                       void volatile** out) {
    Handle& h = of(f);
    *out = nullptr;
    if (h.dead()) return SQLITE_IOERR_SHMMAP;
    auto& shm = h.file->shm;
    const auto want = static_cast<std::size_t>(region) + 1;
    if (shm.size() < want) {
      if (!extend) return SQLITE_OK;
      while (shm.size() < want) {
        shm.emplace_back(new char[static_cast<std::size_t>(region_bytes)]());
      }
    }
    *out = shm[static_cast<std::size_t>(region)].get();
    return SQLITE_OK;
  }

  static void release_shm_locks(Handle& h, int first, int n) {
    File& file = *h.file;
    for (int i = first; i < first + n; ++i) {
      const std::uint32_t bit = 1u << i;
      if (h.shm_shared_held & bit) --file.shm_shared[static_cast<std::size_t>(i)];
      if (h.shm_exclusive_held & bit) file.shm_exclusive[static_cast<std::size_t>(i)] = nullptr;
      h.shm_shared_held &= ~bit;
      h.shm_exclusive_held &= ~bit;
    }
  }

  static int x_shm_lock(sqlite3_file* f, int first, int n, int flags) {
    Handle& h = of(f);
    if (h.dead()) return (flags & SQLITE_SHM_UNLOCK) ? SQLITE_OK : SQLITE_IOERR_SHMLOCK;
    if (flags & SQLITE_SHM_UNLOCK) {
      release_shm_locks(h, first, n);
      return SQLITE_OK;
    }
    File& file = *h.file;
    const bool exclusive = (flags & SQLITE_SHM_EXCLUSIVE) != 0;
    for (int i = first; i < first + n; ++i) {  // all or nothing: check every slot first
      const auto s = static_cast<std::size_t>(i);
      const std::uint32_t bit = 1u << i;
      if (file.shm_exclusive[s] && file.shm_exclusive[s] != &h) return SQLITE_BUSY;
      const int others = file.shm_shared[s] - ((h.shm_shared_held & bit) ? 1 : 0);
      if (exclusive && others > 0) return SQLITE_BUSY;
    }
    for (int i = first; i < first + n; ++i) {
      const auto s = static_cast<std::size_t>(i);
      const std::uint32_t bit = 1u << i;
      if (exclusive) {
        file.shm_exclusive[s] = &h;
        h.shm_exclusive_held |= bit;
      } else if (!(h.shm_shared_held & bit)) {
        ++file.shm_shared[s];
        h.shm_shared_held |= bit;
      }
    }
    return SQLITE_OK;
  }

  static void x_shm_barrier(sqlite3_file*) {}

  static int x_shm_unmap(sqlite3_file* f, int delete_flag) {
    Handle& h = of(f);
    if (h.dead()) return SQLITE_OK;
    release_shm_locks(h, 0, SQLITE_SHM_NLOCK);
    if (delete_flag) h.vfs->retired_shm_.push_back(std::move(h.file->shm));
    h.file->shm.clear();
    return SQLITE_OK;
  }

  static const sqlite3_io_methods* methods() {
    static const sqlite3_io_methods m = {
        2,  // iVersion: with shared memory (WAL), without memory mapping
        x_close,
        x_read,
        x_write,
        x_truncate,
        x_sync,
        x_file_size,
        x_lock,
        x_unlock,
        x_check_reserved_lock,
        x_file_control,
        x_sector_size,
        x_device_characteristics,
        x_shm_map,
        x_shm_lock,
        x_shm_barrier,
        x_shm_unmap,
        nullptr,
        nullptr};
    return &m;
  }
};

MemVfs::MemVfs(std::string name) : name_(std::move(name)) {
  vfs_.iVersion = 2;
  vfs_.szOsFile = static_cast<int>(sizeof(Handle));
  vfs_.mxPathname = 512;
  vfs_.zName = name_.c_str();
  vfs_.pAppData = this;
  vfs_.xOpen = x_open;
  vfs_.xDelete = x_delete;
  vfs_.xAccess = x_access;
  vfs_.xFullPathname = x_full_pathname;
  vfs_.xRandomness = x_randomness;
  vfs_.xSleep = x_sleep;
  vfs_.xCurrentTime = x_current_time;
  vfs_.xGetLastError = x_get_last_error;
  vfs_.xCurrentTimeInt64 = x_current_time_int64;
}

Result<std::unique_ptr<MemVfs>> MemVfs::create(const std::string& name) {
  if (sqlite3_initialize() != SQLITE_OK) return Status::io_error("sqlite3_initialize failed");
  if (name.empty() || sqlite3_vfs_find(name.c_str()) != nullptr) {
    return Status::invalid("a VFS named '" + name + "' exists already");
  }
  std::unique_ptr<MemVfs> v(new MemVfs(name));
  if (sqlite3_vfs_register(&v->vfs_, /*makeDflt=*/0) != SQLITE_OK) {
    return Status::io_error("cannot register VFS " + name);
  }
  return v;
}

MemVfs::~MemVfs() { sqlite3_vfs_unregister(&vfs_); }

std::size_t MemVfs::power_loss() {
  std::size_t lost = 0;
  for (auto it = files_.begin(); it != files_.end();) {
    File& f = *it->second;
    if (f.written || !f.ever_synced) ++lost;
    if (!f.ever_synced) {
      retired_shm_.push_back(std::move(f.shm));
      it = files_.erase(it);
      continue;
    }
    // A fresh File: the old one may still be referenced by dead handles (and their locks).
    auto fresh = std::make_shared<File>();
    fresh->data = f.synced;
    fresh->synced = f.synced;
    fresh->ever_synced = true;
    retired_shm_.push_back(std::move(f.shm));
    it->second = std::move(fresh);
    ++it;
  }
  ++generation_;
  powered_ = false;
  crash_countdown_ = 0;
  return lost;
}

void MemVfs::put_file(const std::string& path, std::vector<std::uint8_t> bytes) {
  auto f = std::make_shared<File>();
  f->synced = bytes;
  f->data = std::move(bytes);
  f->ever_synced = true;
  files_[path] = std::move(f);
}

std::vector<std::string> MemVfs::unsynced_files() const {
  std::vector<std::string> out;
  for (const auto& [path, f] : files_) {
    if (f->written || !f->ever_synced) out.push_back(path);
  }
  return out;
}

bool MemVfs::count_write() {
  ++writes_;
  if (crash_countdown_ == 0) return true;
  if (--crash_countdown_ > 0) return true;
  power_loss();
  return false;
}

int MemVfs::x_open(sqlite3_vfs* vfs, const char* name, sqlite3_file* file, int flags,
                   int* out_flags) {
  MemVfs& self = of(vfs);
  file->pMethods = nullptr;  // SQLite calls no close on a failed open
  if (!self.powered_) return SQLITE_CANTOPEN;
  std::string path = name ? std::string(name) : "temp-" + std::to_string(++self.temp_files_);
  auto it = self.files_.find(path);
  if (it == self.files_.end()) {
    if (!(flags & SQLITE_OPEN_CREATE)) return SQLITE_CANTOPEN;
    it = self.files_.emplace(path, std::make_shared<File>()).first;
  } else if ((flags & SQLITE_OPEN_EXCLUSIVE) && (flags & SQLITE_OPEN_CREATE)) {
    return SQLITE_CANTOPEN;
  }
  auto* h = new (file) Handle{};
  h->base.pMethods = Handle::methods();
  h->vfs = &self;
  h->file = it->second;
  h->path = std::move(path);
  h->generation = self.generation_;
  h->delete_on_close = (flags & SQLITE_OPEN_DELETEONCLOSE) != 0;
  if (out_flags) *out_flags = flags;
  return SQLITE_OK;
}

int MemVfs::x_delete(sqlite3_vfs* vfs, const char* name, int) {
  MemVfs& self = of(vfs);
  if (!self.powered_) return SQLITE_IOERR_DELETE;
  if (self.files_.erase(name) == 0) return SQLITE_IOERR_DELETE_NOENT;
  return SQLITE_OK;
}

int MemVfs::x_access(sqlite3_vfs* vfs, const char* name, int, int* out) {
  MemVfs& self = of(vfs);
  if (!self.powered_) return SQLITE_IOERR_ACCESS;
  auto it = self.files_.find(name);
  // A file exists for SQLite only with content: an empty WAL left behind counts as none.
  *out = it != self.files_.end() && !it->second->data.empty();
  return SQLITE_OK;
}

int MemVfs::x_full_pathname(sqlite3_vfs*, const char* name, int n, char* out) {
  const std::size_t len = std::strlen(name);
  if (len + 1 > static_cast<std::size_t>(n)) return SQLITE_CANTOPEN;
  std::memcpy(out, name, len + 1);
  return SQLITE_OK;
}

// Randomness and time are SQLite's own needs (WAL salts, temp names): the default VFS serves them.
int MemVfs::x_randomness(sqlite3_vfs*, int n, char* out) {
  return default_vfs().xRandomness(&default_vfs(), n, out);
}
int MemVfs::x_sleep(sqlite3_vfs*, int micros) { return micros; }  // nothing to wait for in memory
int MemVfs::x_current_time(sqlite3_vfs*, double* out) {
  return default_vfs().xCurrentTime(&default_vfs(), out);
}
int MemVfs::x_get_last_error(sqlite3_vfs*, int, char*) { return 0; }
int MemVfs::x_current_time_int64(sqlite3_vfs*, sqlite3_int64* out) {
  return default_vfs().xCurrentTimeInt64(&default_vfs(), out);
}

}  // namespace outpost::storage
