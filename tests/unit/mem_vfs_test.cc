// MemVfs (storage/mem_vfs.h): a Store on the in-memory VFS loses exactly its unsynced writes in
// a power loss, and never an acknowledged (committed) one: failure rule 4 of
// docs/architecture.md, checked at every write of a commit and of a checkpoint.
#include "outpost/storage/mem_vfs.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "outpost/storage/store.h"

namespace outpost::storage {
namespace {

constexpr const char* kDb = "/sim/node-1/outpost.db";
constexpr int kCrashPointsMax = 200;  // far more writes than one small commit or checkpoint makes

std::unique_ptr<MemVfs> make_vfs(const std::string& name) {
  auto v = MemVfs::create(name);
  EXPECT_TRUE(v.is_ok()) << v.status().to_string();
  return v.is_ok() ? std::move(v).value() : nullptr;
}

std::unique_ptr<Store> open_store(const MemVfs& vfs, OpenMode mode = OpenMode::kExisting) {
  auto s = Store::open(kDb, mode, StoreOptions{vfs.name()});
  EXPECT_TRUE(s.is_ok()) << s.status().to_string();
  return s.is_ok() ? std::move(s).value() : nullptr;
}

// Commits key=value in its own transaction; true when the commit was acknowledged.
bool commit_meta(Store& s, const std::string& key, const std::string& value) {
  auto txn = s.begin();
  if (!txn.is_ok() || !s.set_meta(key, value).is_ok()) return false;
  return txn->commit().is_ok();
}

std::string meta(Store& s, const std::string& key) {
  auto v = s.get_meta(key);
  EXPECT_TRUE(v.is_ok()) << v.status().to_string();
  return v.is_ok() && *v ? **v : "";
}

void expect_intact(Store& s) {
  auto check = s.db().prepare("PRAGMA integrity_check");
  ASSERT_TRUE(check.is_ok());
  ASSERT_TRUE(*check->step());
  EXPECT_EQ(check->text(0), "ok");
}

TEST(MemVfs, OpensOnlyWhereNamedAndRefusesAMissingDatabaseOrVfs) {
  auto vfs = make_vfs("outpost-test-named");
  ASSERT_TRUE(vfs);
  EXPECT_FALSE(MemVfs::create("outpost-test-named").is_ok()) << "two VFSs under one name";
  EXPECT_EQ(Store::open(kDb, OpenMode::kExisting, StoreOptions{vfs->name()}).status().code(),
            Code::kNotFound);
  EXPECT_FALSE(Store::open(kDb, OpenMode::kCreate, StoreOptions{"no-such-vfs"}).is_ok());
  auto s = open_store(*vfs, OpenMode::kCreate);
  ASSERT_TRUE(s);
  EXPECT_TRUE(vfs->exists(kDb));
  EXPECT_TRUE(vfs->exists(std::string(kDb) + "-wal")) << "the Store runs in WAL mode";
  EXPECT_EQ(sqlite3_vfs_find(nullptr), sqlite3_vfs_find("unix")) << "MemVfs became the default";
}

// Acknowledged means synced: each commit syncs (WAL, synchronous=FULL), and a power loss keeps
// every committed row and drops a large transaction that spilled pages into the WAL uncommitted.
TEST(MemVfs, PowerLossDropsUnsyncedWritesAndKeepsEveryCommittedOne) {
  auto vfs = make_vfs("outpost-test-power");
  ASSERT_TRUE(vfs);
  auto s = open_store(*vfs, OpenMode::kCreate);
  ASSERT_TRUE(s);
  constexpr int kAcked = 20;
  for (int i = 0; i < kAcked; ++i) {
    const std::uint64_t syncs_before = vfs->syncs();
    ASSERT_TRUE(commit_meta(*s, "acked-" + std::to_string(i), "v" + std::to_string(i)));
    EXPECT_GT(vfs->syncs(), syncs_before) << "a commit was acknowledged without an xSync";
    // Writes may follow the sync (SQLite pads the WAL past the sector the commit frame ends in),
    // but none that the commit needs: the crash test below cuts the power at each of them.
  }
  // An uncommitted transaction larger than the page cache: SQLite spills its pages to the WAL.
  ASSERT_TRUE(s->db().exec("PRAGMA cache_size=10").is_ok());
  {
    auto txn = s->begin();
    ASSERT_TRUE(txn.is_ok());
    const std::uint64_t syncs_before = vfs->syncs(), writes_before = vfs->writes();
    const std::string big(3000, 'x');
    for (int i = 0; i < 200; ++i)
      ASSERT_TRUE(s->set_meta("unacked-" + std::to_string(i), big).is_ok());
    ASSERT_GT(vfs->writes(), writes_before + 100) << "the transaction did not spill into the WAL";
    ASSERT_EQ(vfs->syncs(), syncs_before) << "an uncommitted transaction synced";
    ASSERT_FALSE(vfs->unsynced_files().empty());
    EXPECT_GT(vfs->power_loss(), 0u);
    // The dead process's transaction and connection go without touching the disk.
  }
  s.reset();
  EXPECT_FALSE(Store::open(kDb, OpenMode::kExisting, StoreOptions{vfs->name()}).is_ok())
      << "a file opened while the power was off";
  vfs->power_on();
  s = open_store(*vfs);
  ASSERT_TRUE(s);
  expect_intact(*s);
  for (int i = 0; i < kAcked; ++i)
    EXPECT_EQ(meta(*s, "acked-" + std::to_string(i)), "v" + std::to_string(i));
  EXPECT_EQ(meta(*s, "unacked-0"), "") << "an unsynced write survived the power loss";
  EXPECT_TRUE(commit_meta(*s, "after", "1")) << "the store does not carry on after a power loss";
}

// The power goes at the k-th write of a commit (or of a WAL checkpoint), for every k until the
// operation completes: every row acknowledged before is there, the row in flight is there exactly
// when its commit was acknowledged, and the database opens and passes integrity_check.
TEST(MemVfs, PowerLossAtEveryWriteOfACommitOrCheckpointLosesNoAcknowledgedRow) {
  for (const bool checkpoint : {false, true}) {
    SCOPED_TRACE(checkpoint ? "crash during a checkpoint" : "crash during a commit");
    auto vfs = make_vfs(checkpoint ? "outpost-test-crash-ckpt" : "outpost-test-crash-commit");
    ASSERT_TRUE(vfs);
    auto s = open_store(*vfs, OpenMode::kCreate);
    ASSERT_TRUE(s);
    int acked = 0;
    bool completed = false;
    for (int k = 1; k <= kCrashPointsMax && !completed; ++k) {
      SCOPED_TRACE("power lost at write " + std::to_string(k));
      ASSERT_TRUE(commit_meta(*s, "row-" + std::to_string(acked), std::string(500, 'a')));
      ++acked;
      vfs->crash_at_write(static_cast<std::uint64_t>(k));
      bool in_flight_acked = false;
      if (checkpoint) {
        completed = s->db().exec("PRAGMA wal_checkpoint(TRUNCATE)").is_ok() && vfs->powered();
      } else {
        in_flight_acked = commit_meta(*s, "row-" + std::to_string(acked), std::string(5000, 'b'));
        completed = in_flight_acked && vfs->powered();
      }
      if (vfs->powered()) vfs->power_loss();  // the power goes right after, at the latest
      s.reset();
      vfs->power_on();
      s = open_store(*vfs);
      ASSERT_TRUE(s);
      expect_intact(*s);
      for (int i = 0; i < acked; ++i) {
        ASSERT_NE(meta(*s, "row-" + std::to_string(i)), "") << "acknowledged row " << i << " lost";
      }
      // A row whose commit failed may still be there (the power went after its sync, as after an
      // fsync whose answer never reached the caller); a row whose commit succeeded must be.
      const bool in_flight_kept = !meta(*s, "row-" + std::to_string(acked)).empty();
      EXPECT_TRUE(in_flight_kept || !in_flight_acked) << "the acknowledged row in flight was lost";
      if (in_flight_kept) ++acked;
    }
    EXPECT_TRUE(completed) << "the operation never completed within " << kCrashPointsMax
                           << " writes";
  }
}

}  // namespace
}  // namespace outpost::storage
