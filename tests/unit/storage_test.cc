// storage/ (storage/src/{sqlite,store}.cc): the RAII SQLite layer (durability pragmas,
// transactions that roll back unless committed), schema migrations and the refusal of newer,
// foreign and non-SQLite files, and the Store's op log (contiguous, hash-chained), member state,
// lookups, POS request idempotency rows and version vector.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <string>
#include <vector>

#include "outpost/base/limits.h"
#include "outpost/crypto/crypto.h"
#include "outpost/storage/sqlite.h"
#include "outpost/storage/store.h"
#include "outpost/sync/op.h"
#include "test_util.h"

namespace outpost::storage {
namespace {

using sync::Field;
using sync::MemberId;
using sync::NodeId;
using sync::Op;
using sync::OpKind;

// Runs `sql` on a separate raw connection, the way another tool (or an attacker) would.
void raw_exec(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  char* err = nullptr;
  int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
  std::string msg = err ? err : "";
  sqlite3_free(err);
  sqlite3_close(db);
  ASSERT_EQ(rc, SQLITE_OK) << msg;
}

class StorageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(crypto::init().is_ok());
    origin_[0] = 0xA1;
    origin_[15] = 0x01;
  }

  std::unique_ptr<Store> open_store(OpenMode mode = OpenMode::kCreate) {
    auto s = Store::open(db_path_, mode);
    EXPECT_TRUE(s.is_ok()) << s.status().to_string();
    return s.is_ok() ? std::move(s).value() : nullptr;
  }

  // Builds the next op of `origin_` after `prev` (seq, prev hash) and signs it.
  sync::SignedOp make_op(OpKind kind, const MemberId& member, std::uint64_t seq,
                         const sync::Hash32& prev, std::uint64_t amount = 0,
                         std::vector<sync::FieldValue> fields = {}) {
    Op op;
    op.kind = kind;
    op.origin = origin_;
    op.seq = seq;
    op.prev = prev;
    op.hlc = {1'700'000'000'000ULL + seq, 0};
    op.member = member;
    op.request_id = "req-" + std::to_string(seq);
    if (kind == OpKind::kEnroll) {
      op.fields = fields.empty() ? std::vector<sync::FieldValue>{{Field::kCard, "12345678"},
                                                                 {Field::kName, "Ann"}}
                                 : fields;
    } else if (kind == OpKind::kTopup || kind == OpKind::kSpend) {
      op.account = sync::Account::kWallet;
      op.amount = amount;
    }
    return sync::sign_op(op, key_);
  }

  Status append(Store& store, const sync::SignedOp& op) {
    auto txn = store.begin();
    if (!txn.is_ok()) return txn.status();
    OUTPOST_RETURN_IF_ERROR(store.append_op(op));
    return txn->commit();
  }

  test::TempDir dir_{"outpost-storage"};
  std::string db_path_ = dir_.file("outpost.db");
  crypto::SigningKey key_ = crypto::SigningKey::generate();
  NodeId origin_{};
  MemberId member_{{0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xAA, 0xBB, 0xCC, 0xDD,
                    0xEE, 0xFF, 0x01}};
};

// --- Database / Transaction ---

TEST_F(StorageTest, DatabaseOpensInWalWithSynchronousFull) {
  auto db = Database::open(db_path_, OpenMode::kCreate);
  ASSERT_TRUE(db.is_ok()) << db.status().to_string();
  auto mode = (*db)->prepare("PRAGMA journal_mode");
  ASSERT_TRUE(mode.is_ok());
  auto row = mode->step();
  ASSERT_TRUE(row.is_ok() && *row);
  EXPECT_EQ(mode->text(0), "wal");
  auto sync_level = (*db)->query_int("PRAGMA synchronous");
  ASSERT_TRUE(sync_level.is_ok());
  EXPECT_EQ(*sync_level, 2)
      << "synchronous must be FULL (2): a commit is fsync'd before it returns";
  auto fk = (*db)->query_int("PRAGMA foreign_keys");
  ASSERT_TRUE(fk.is_ok());
  EXPECT_EQ(*fk, 1);
  auto busy = (*db)->query_int("PRAGMA busy_timeout");
  ASSERT_TRUE(busy.is_ok());
  EXPECT_GT(*busy, 0) << "a second writer must wait for the lock, not fail at once";
  auto checkpoint = (*db)->query_int("PRAGMA wal_autocheckpoint");
  ASSERT_TRUE(checkpoint.is_ok());
  EXPECT_EQ(*checkpoint, limits::kSqliteWalAutocheckpointPages)
      << "SQLite's default (1000 pages) checkpoints every ~100 ops";
}

TEST_F(StorageTest, OpenExistingOfMissingFileIsNotFoundAndCreatesNothing) {
  auto db = Database::open(db_path_, OpenMode::kExisting);
  ASSERT_FALSE(db.is_ok());
  EXPECT_EQ(db.status().code(), Code::kNotFound);
  EXPECT_EQ(test::file_mode(db_path_), -1);
  auto store = Store::open(db_path_, OpenMode::kExisting);
  EXPECT_EQ(store.status().code(), Code::kNotFound);
  EXPECT_EQ(test::file_mode(db_path_), -1);
}

TEST_F(StorageTest, TransactionRollsBackUnlessCommitted) {
  auto db = Database::open(db_path_, OpenMode::kCreate);
  ASSERT_TRUE(db.is_ok());
  Database& d = **db;
  ASSERT_TRUE(d.exec("CREATE TABLE t(x INTEGER)").is_ok());
  {
    auto txn = Transaction::begin(d);
    ASSERT_TRUE(txn.is_ok());
    ASSERT_TRUE(d.exec("INSERT INTO t VALUES(1)").is_ok());
    // Destroyed without commit().
  }
  EXPECT_EQ(*d.query_int("SELECT count(*) FROM t"), 0);
  {
    auto txn = Transaction::begin(d);
    ASSERT_TRUE(txn.is_ok());
    ASSERT_TRUE(d.exec("INSERT INTO t VALUES(2)").is_ok());
    ASSERT_TRUE(txn->rollback().is_ok());
    EXPECT_TRUE(txn->rollback().is_ok()) << "a second rollback is a no-op";
  }
  EXPECT_EQ(*d.query_int("SELECT count(*) FROM t"), 0);
  {
    auto txn = Transaction::begin(d);
    ASSERT_TRUE(txn.is_ok());
    ASSERT_TRUE(d.exec("INSERT INTO t VALUES(3)").is_ok());
    ASSERT_TRUE(txn->commit().is_ok());
  }
  EXPECT_EQ(*d.query_int("SELECT count(*) FROM t"), 1);
  EXPECT_EQ(*d.query_int("SELECT x FROM t"), 3);
}

TEST_F(StorageTest, CachedStatementComesBackResetAndUnboundAndTwinsCanBeOpenAtOnce) {
  auto db = Database::open(db_path_, OpenMode::kCreate);
  ASSERT_TRUE(db.is_ok());
  Database& d = **db;
  ASSERT_TRUE(d.exec("CREATE TABLE t(x INTEGER); INSERT INTO t VALUES(1),(2),(3)").is_ok());
  const std::string sql = "SELECT x FROM t WHERE x >= ?1 ORDER BY x";
  {
    auto s = d.prepare(sql);
    ASSERT_TRUE(s.is_ok());
    s->bind(1, std::int64_t{2});
    ASSERT_TRUE(*s->step());  // left mid-iteration: the cache must reset it
    EXPECT_EQ(s->int64(0), 2);
  }
  {
    auto again = d.prepare(sql);  // the cached one: unbound (NULL), so no row matches
    ASSERT_TRUE(again.is_ok());
    auto row = again->step();
    ASSERT_TRUE(row.is_ok());
    EXPECT_FALSE(*row) << "a reused statement kept its old binding or position";
    // The same SQL while the first is still open: a second, independent statement.
    auto twin = d.prepare(sql);
    ASSERT_TRUE(twin.is_ok());
    twin->bind(1, std::int64_t{1});
    again->reset();
    again->bind(1, std::int64_t{3});
    ASSERT_TRUE(*twin->step());
    ASSERT_TRUE(*again->step());
    EXPECT_EQ(twin->int64(0), 1);
    EXPECT_EQ(again->int64(0), 3);
  }
  // A statement left mid-read holds no lock once returned: another connection can checkpoint.
  {
    auto s = d.prepare(sql);
    s->bind(1, std::int64_t{1});
    ASSERT_TRUE(*s->step());
  }
  auto other = Database::open(db_path_, OpenMode::kExisting);
  ASSERT_TRUE(other.is_ok());
  ASSERT_TRUE((*other)->exec("INSERT INTO t VALUES(4)").is_ok());
  auto ck = (*other)->prepare("PRAGMA wal_checkpoint(TRUNCATE)");
  ASSERT_TRUE(ck.is_ok());
  ASSERT_TRUE(*ck->step());
  EXPECT_EQ(ck->int64(0), 0) << "the checkpoint was blocked by a reader";
}

TEST_F(StorageTest, MovedFromTransactionDoesNotRollBackTwice) {
  auto db = Database::open(db_path_, OpenMode::kCreate);
  ASSERT_TRUE(db.is_ok());
  Database& d = **db;
  ASSERT_TRUE(d.exec("CREATE TABLE t(x INTEGER)").is_ok());
  {
    auto txn = Transaction::begin(d);
    ASSERT_TRUE(txn.is_ok());
    Transaction owner(std::move(txn).value());
    ASSERT_TRUE(d.exec("INSERT INTO t VALUES(1)").is_ok());
    ASSERT_TRUE(owner.commit().is_ok());
  }
  EXPECT_EQ(*d.query_int("SELECT count(*) FROM t"), 1);
}

TEST_F(StorageTest, CommittedRowSurvivesReopen) {
  {
    auto db = Database::open(db_path_, OpenMode::kCreate);
    ASSERT_TRUE(db.is_ok());
    ASSERT_TRUE((*db)->exec("CREATE TABLE t(x INTEGER)").is_ok());
    auto txn = Transaction::begin(**db);
    ASSERT_TRUE(txn.is_ok());
    ASSERT_TRUE((*db)->exec("INSERT INTO t VALUES(7)").is_ok());
    ASSERT_TRUE(txn->commit().is_ok());
  }
  auto db = Database::open(db_path_, OpenMode::kExisting);
  ASSERT_TRUE(db.is_ok());
  EXPECT_EQ(*(*db)->query_int("SELECT x FROM t"), 7);
}

TEST_F(StorageTest, SavepointRollsBackOnlyItsOwnWork) {
  auto db = Database::open(db_path_, OpenMode::kCreate);
  ASSERT_TRUE(db.is_ok());
  Database& d = **db;
  ASSERT_TRUE(d.exec("CREATE TABLE t(x INTEGER)").is_ok());
  auto txn = Transaction::begin(d);
  ASSERT_TRUE(txn.is_ok());
  {
    auto sp = Savepoint::begin(d);
    ASSERT_TRUE(sp.is_ok());
    ASSERT_TRUE(d.exec("INSERT INTO t VALUES(1)").is_ok());
    ASSERT_TRUE(sp->release().is_ok());
  }
  {
    auto sp = Savepoint::begin(d);
    ASSERT_TRUE(sp.is_ok());
    ASSERT_TRUE(d.exec("INSERT INTO t VALUES(2)").is_ok());
    // Destroyed without release(): only the 2 goes.
  }
  ASSERT_TRUE(txn->commit().is_ok());
  EXPECT_EQ(*d.query_int("SELECT count(*) FROM t"), 1);
  EXPECT_EQ(*d.query_int("SELECT x FROM t"), 1);
}

TEST_F(StorageTest, SqlErrorsComeBackAsStatusNotCrash) {
  auto db = Database::open(db_path_, OpenMode::kCreate);
  ASSERT_TRUE(db.is_ok());
  EXPECT_FALSE((*db)->exec("THIS IS NOT SQL").is_ok());
  EXPECT_FALSE((*db)->prepare("SELECT * FROM no_such_table").is_ok());
  EXPECT_EQ((*db)->query_int("SELECT 1 WHERE 0").status().code(), Code::kNotFound);
  ASSERT_TRUE((*db)->exec("CREATE TABLE u(k INTEGER PRIMARY KEY)").is_ok());
  ASSERT_TRUE((*db)->exec("INSERT INTO u VALUES(1)").is_ok());
  EXPECT_EQ((*db)->exec("INSERT INTO u VALUES(1)").code(), Code::kInvalidArgument)
      << "a constraint violation is bad input, not an I/O failure";
}

// --- migrations and refusals ---

TEST_F(StorageTest, MigrationSetsUserVersionAndApplicationId) {
  auto store = open_store();
  ASSERT_TRUE(store);
  EXPECT_EQ(*store->db().query_int("PRAGMA user_version"), kSchemaVersion);
  EXPECT_EQ(*store->db().query_int("PRAGMA application_id"), kApplicationId);
  for (const char* table : {"ops", "heads", "requests", "member_fields", "escrow", "meta"}) {
    EXPECT_EQ(*store->db().query_int(std::string("SELECT count(*) FROM sqlite_master WHERE "
                                                 "type='table' AND name='") +
                                     table + "'"),
              1)
        << table;
  }
}

TEST_F(StorageTest, ReopenOfCurrentSchemaChangesNothing) {
  {
    auto store = open_store();
    ASSERT_TRUE(store);
    ASSERT_TRUE(store->set_meta("k", "v").is_ok());
  }
  std::string before = test::dump_sqlite(db_path_);
  ASSERT_FALSE(before.empty());
  auto store = open_store(OpenMode::kExisting);
  ASSERT_TRUE(store);
  EXPECT_EQ(test::dump_sqlite(db_path_), before);
  EXPECT_EQ(store->get_meta("k")->value_or(""), "v");
}

TEST_F(StorageTest, NewerSchemaIsRefusedAsUnsupportedAndLeftUnchanged) {
  { ASSERT_TRUE(open_store()); }
  raw_exec(db_path_, "PRAGMA user_version=" + std::to_string(kSchemaVersion + 1));
  std::string dump = test::dump_sqlite(db_path_);
  std::string bytes = test::read_file(db_path_);
  for (OpenMode mode : {OpenMode::kExisting, OpenMode::kCreate}) {
    auto s = Store::open(db_path_, mode);
    ASSERT_FALSE(s.is_ok());
    EXPECT_EQ(s.status().code(), Code::kUnsupported);
    EXPECT_NE(s.status().message().find("newer"), std::string::npos) << s.status().message();
  }
  EXPECT_EQ(test::dump_sqlite(db_path_), dump);
  EXPECT_TRUE(test::read_file(db_path_) == bytes) << "the file's bytes changed";
}

TEST_F(StorageTest, ForeignSqliteDatabaseIsRefusedAndLeftUnchanged) {
  // Someone else's SQLite file (rollback journal, application_id 0) in our data dir.
  raw_exec(db_path_,
           "CREATE TABLE customers(id INTEGER PRIMARY KEY, name TEXT);"
           "INSERT INTO customers VALUES(1, 'x');");
  std::string bytes = test::read_file(db_path_);
  std::string dump = test::dump_sqlite(db_path_);
  ASSERT_FALSE(dump.empty());
  for (OpenMode mode : {OpenMode::kExisting, OpenMode::kCreate}) {
    auto s = Store::open(db_path_, mode);
    ASSERT_FALSE(s.is_ok());
    EXPECT_EQ(s.status().code(), Code::kCorruption) << s.status().to_string();
    EXPECT_NE(s.status().message().find("not an Outpost database"), std::string::npos);
  }
  EXPECT_EQ(test::dump_sqlite(db_path_), dump) << "no Outpost table may be added";
  EXPECT_TRUE(test::read_file(db_path_) == bytes)
      << "the file's bytes changed: not even the journal mode may change";
}

TEST_F(StorageTest, ForeignApplicationIdIsRefusedEvenWithoutTables) {
  raw_exec(db_path_, "PRAGMA application_id=1234");
  auto s = Store::open(db_path_, OpenMode::kExisting);
  ASSERT_FALSE(s.is_ok());
  EXPECT_EQ(s.status().code(), Code::kCorruption);
}

TEST_F(StorageTest, NonSqliteFileIsRefusedAndLeftUnchanged) {
  std::string junk(8192, 'J');
  test::write_file(db_path_, junk);
  for (OpenMode mode : {OpenMode::kExisting, OpenMode::kCreate}) {
    auto s = Store::open(db_path_, mode);
    ASSERT_FALSE(s.is_ok());
    EXPECT_EQ(s.status().code(), Code::kCorruption) << s.status().to_string();
  }
  EXPECT_TRUE(test::read_file(db_path_) == junk) << "the file's bytes changed";
}

// --- op log ---

TEST_F(StorageTest, AppendedOpsFormAChainAndReadBackIdentically) {
  auto store = open_store();
  ASSERT_TRUE(store);
  auto a = make_op(OpKind::kEnroll, member_, 1, {});
  auto b = make_op(OpKind::kTopup, member_, 2, a.hash, 500);
  ASSERT_TRUE(append(*store, a).is_ok());
  ASSERT_TRUE(append(*store, b).is_ok());

  auto head = store->head(origin_);
  ASSERT_TRUE(head.is_ok());
  EXPECT_EQ(head->seq, 2u);
  EXPECT_EQ(head->hash, b.hash);
  EXPECT_EQ(*store->op_count(), 2u);

  auto got = store->get_op(origin_, 2);
  ASSERT_TRUE(got.is_ok() && got->has_value());
  EXPECT_EQ((*got)->op, b.op);
  EXPECT_EQ((*got)->signed_bytes, b.signed_bytes);
  EXPECT_EQ((*got)->sig, b.sig);
  EXPECT_EQ((*got)->hash, b.hash);
  EXPECT_TRUE(sync::verify_op(**got, key_.public_key()).is_ok());
  EXPECT_FALSE(store->get_op(origin_, 3)->has_value());

  auto range = store->ops_of_origin(origin_, 1, 10);
  ASSERT_TRUE(range.is_ok());
  ASSERT_EQ(range->size(), 2u);
  EXPECT_EQ((*range)[0].op.seq, 1u);
  EXPECT_EQ((*range)[1].op.seq, 2u);
  EXPECT_EQ(store->ops_of_origin(origin_, 2, 10)->size(), 1u);
  EXPECT_EQ(store->ops_of_origin(origin_, 1, 1)->size(), 1u);

  auto hist = store->ops_of_member(member_, 10);
  ASSERT_TRUE(hist.is_ok());
  ASSERT_EQ(hist->size(), 2u);
  EXPECT_EQ((*hist)[0].op.seq, 2u) << "history is newest first";
}

TEST_F(StorageTest, AppendRefusesGapInSeq) {
  auto store = open_store();
  ASSERT_TRUE(store);
  auto a = make_op(OpKind::kEnroll, member_, 1, {});
  ASSERT_TRUE(append(*store, a).is_ok());
  std::string before = test::dump_sqlite(db_path_);
  auto gap = make_op(OpKind::kTopup, member_, 3, a.hash, 100);
  Status st = append(*store, gap);
  EXPECT_EQ(st.code(), Code::kCorruption);
  EXPECT_NE(st.message().find("not next"), std::string::npos) << st.message();
  EXPECT_EQ(store->head(origin_)->seq, 1u);
  EXPECT_EQ(test::dump_sqlite(db_path_), before);
}

TEST_F(StorageTest, AppendRefusesReplayOfExistingSeq) {
  auto store = open_store();
  ASSERT_TRUE(store);
  auto a = make_op(OpKind::kEnroll, member_, 1, {});
  ASSERT_TRUE(append(*store, a).is_ok());
  EXPECT_EQ(append(*store, a).code(), Code::kCorruption);
  EXPECT_EQ(*store->op_count(), 1u);
}

TEST_F(StorageTest, AppendRefusesBrokenPrevChain) {
  auto store = open_store();
  ASSERT_TRUE(store);
  auto a = make_op(OpKind::kEnroll, member_, 1, {});
  ASSERT_TRUE(append(*store, a).is_ok());
  std::string before = test::dump_sqlite(db_path_);
  sync::Hash32 wrong = a.hash;
  wrong[0] ^= 0xFF;
  Status st = append(*store, make_op(OpKind::kTopup, member_, 2, wrong, 100));
  EXPECT_EQ(st.code(), Code::kCorruption);
  EXPECT_NE(st.message().find("chain"), std::string::npos) << st.message();
  EXPECT_EQ(test::dump_sqlite(db_path_), before);
}

TEST_F(StorageTest, AppendRefusesGenesisWithNonZeroPrev) {
  auto store = open_store();
  ASSERT_TRUE(store);
  sync::Hash32 prev{};
  prev[5] = 1;
  // The op itself is invalid (sign_op checks the shape), so build it with a valid prev and
  // splice the bad prev into the decoded op only: append_op checks op.prev against the head.
  auto a = make_op(OpKind::kEnroll, member_, 1, {});
  a.op.prev = prev;
  EXPECT_EQ(append(*store, a).code(), Code::kCorruption);
  EXPECT_EQ(*store->op_count(), 0u);
}

TEST_F(StorageTest, OpsOfTwoOriginsChainIndependently) {
  auto store = open_store();
  ASSERT_TRUE(store);
  ASSERT_TRUE(append(*store, make_op(OpKind::kEnroll, member_, 1, {})).is_ok());
  NodeId mine = origin_;
  origin_[15] = 0x02;
  crypto::SigningKey other = crypto::SigningKey::generate();
  std::swap(key_, other);
  auto b1 = make_op(OpKind::kTopup, member_, 1, {}, 40);
  ASSERT_TRUE(append(*store, b1).is_ok());
  ASSERT_TRUE(append(*store, make_op(OpKind::kTopup, member_, 2, b1.hash, 2)).is_ok());

  auto vv = store->version_vector();
  ASSERT_TRUE(vv.is_ok());
  ASSERT_EQ(vv->size(), 2u);
  EXPECT_EQ(vv->at(mine), 1u);
  EXPECT_EQ(vv->at(origin_), 2u);
}

TEST_F(StorageTest, ReversalOfAnOpTwiceIsRefused) {
  auto store = open_store();
  ASSERT_TRUE(store);
  auto a = make_op(OpKind::kEnroll, member_, 1, {});
  auto b = make_op(OpKind::kTopup, member_, 2, a.hash, 100);
  ASSERT_TRUE(append(*store, a).is_ok());
  ASSERT_TRUE(append(*store, b).is_ok());
  auto reverse_op = [&](std::uint64_t seq, const sync::Hash32& prev) {
    Op op;
    op.kind = OpKind::kReverse;
    op.origin = origin_;
    op.seq = seq;
    op.prev = prev;
    op.hlc = {1'700'000'001'000ULL + seq, 0};
    op.member = member_;
    op.account = sync::Account::kWallet;
    op.amount = 100;
    op.ref_origin = origin_;
    op.ref_seq = 2;
    op.ref_kind = OpKind::kTopup;
    return sync::sign_op(op, key_);
  };
  auto r1 = reverse_op(3, b.hash);
  ASSERT_TRUE(append(*store, r1).is_ok());
  EXPECT_EQ(*store->reversed_by(origin_, 2), std::optional<std::uint64_t>(3));
  EXPECT_FALSE(store->reversed_by(origin_, 1)->has_value());
  EXPECT_EQ(append(*store, reverse_op(4, r1.hash)).code(), Code::kCorruption);
  EXPECT_EQ(store->head(origin_)->seq, 3u) << "the refused append must roll back entirely";
}

// --- member state and lookups ---

TEST_F(StorageTest, LoadMemberReflectsAppliedOps) {
  auto store = open_store();
  ASSERT_TRUE(store);
  EXPECT_FALSE(store->load_member(member_)->has_value());
  auto a = make_op(OpKind::kEnroll, member_, 1, {});
  auto b = make_op(OpKind::kTopup, member_, 2, a.hash, 500);
  auto c = make_op(OpKind::kSpend, member_, 3, b.hash, 120);
  for (const auto& op : {a, b, c}) ASSERT_TRUE(append(*store, op).is_ok());

  auto m = store->load_member(member_);
  ASSERT_TRUE(m.is_ok() && m->has_value());
  EXPECT_EQ((*m)->field(Field::kCard), "12345678");
  EXPECT_EQ((*m)->field(Field::kName), "Ann");
  EXPECT_EQ((*m)->wallet.value(), 380);
  EXPECT_EQ((*m)->wallet.rights(origin_), 380);
  EXPECT_EQ((*m)->points.value(), 0);

  // The stored state equals the reference replay of the same ops.
  sync::Replica replica;
  for (const auto& op : {a, b, c}) ASSERT_TRUE(replica.apply(op.op).is_ok());
  ASSERT_NE(replica.member(member_), nullptr);
  EXPECT_EQ(**m, *replica.member(member_));
  auto all = store->load_all_members();
  ASSERT_TRUE(all.is_ok());
  EXPECT_EQ(all->size(), 1u);
}

// append_op writes only the CRDT rows an op changes (a top-up: its one escrow row), whether it
// loads the member itself or is given the state its caller loaded; the stored state still
// equals the replay. Rewriting every row of the member was most of a top-up's SQL work.
TEST_F(StorageTest, AppendWritesOnlyTheMemberRowsTheOpChanges) {
  auto store = open_store();
  ASSERT_TRUE(store);
  auto a = make_op(OpKind::kEnroll, member_, 1, {}, 0,
                   {{Field::kCard, "12345678"}, {Field::kName, "Ann"}, {Field::kPhone, "+4915112345678"}});
  auto b = make_op(OpKind::kTopup, member_, 2, a.hash, 500);
  auto c = make_op(OpKind::kSpend, member_, 3, b.hash, 120);
  ASSERT_TRUE(append(*store, a).is_ok());
  sqlite3* db = store->db().handle();

  // ops, heads and the member's one wallet escrow row: 3 rows.
  const auto before_b = sqlite3_total_changes64(db);
  ASSERT_TRUE(append(*store, b).is_ok());
  EXPECT_EQ(sqlite3_total_changes64(db) - before_b, 3);

  // The same with the member state given by the caller, as the ledger does.
  auto loaded = store->load_member(member_);
  ASSERT_TRUE(loaded.is_ok() && loaded->has_value());
  const auto before_c = sqlite3_total_changes64(db);
  {
    auto txn = store->begin();
    ASSERT_TRUE(txn.is_ok());
    ASSERT_TRUE(store->append_op(c, &**loaded).is_ok());
    ASSERT_TRUE(txn->commit().is_ok());
  }
  EXPECT_EQ(sqlite3_total_changes64(db) - before_c, 3);

  sync::Replica replica;
  for (const auto& op : {a, b, c}) ASSERT_TRUE(replica.apply(op.op).is_ok());
  auto m = store->load_member(member_);
  ASSERT_TRUE(m.is_ok() && m->has_value());
  EXPECT_EQ(**m, *replica.member(member_));
  EXPECT_EQ((*m)->wallet.value(), 380);
}

TEST_F(StorageTest, FindMembersMatchesCurrentFieldValueOnly) {
  auto store = open_store();
  ASSERT_TRUE(store);
  MemberId other = member_;
  other[0] = 0x99;
  auto a = make_op(OpKind::kEnroll, member_, 1, {}, 0,
                   {{Field::kCard, "11112222"}, {Field::kPhone, "+4915100000"}});
  auto b = make_op(OpKind::kEnroll, other, 2, a.hash, 0,
                   {{Field::kCard, "33334444"}, {Field::kPhone, "+4915100000"}});
  ASSERT_TRUE(append(*store, a).is_ok());
  ASSERT_TRUE(append(*store, b).is_ok());

  auto by_card = store->find_members(Field::kCard, "33334444");
  ASSERT_TRUE(by_card.is_ok());
  ASSERT_EQ(by_card->size(), 1u);
  EXPECT_EQ(by_card->front(), other);
  auto by_phone = store->find_members(Field::kPhone, "+4915100000");
  ASSERT_TRUE(by_phone.is_ok());
  EXPECT_EQ(by_phone->size(), 2u);
  EXPECT_TRUE(store->find_members(Field::kCard, "99999999")->empty());
  EXPECT_TRUE(store->find_members(Field::kPhone, "11112222")->empty()) << "fields do not mix";

  // A later profile op replaces the phone: the old value no longer finds the member.
  Op p;
  p.kind = OpKind::kProfile;
  p.origin = origin_;
  p.seq = 3;
  p.prev = b.hash;
  p.hlc = {1'700'000'009'000ULL, 0};
  p.member = member_;
  p.fields = {{Field::kPhone, "+4915199999"}};
  ASSERT_TRUE(append(*store, sync::sign_op(p, key_)).is_ok());
  EXPECT_EQ(store->find_members(Field::kPhone, "+4915100000")->size(), 1u);
  EXPECT_EQ(store->find_members(Field::kPhone, "+4915199999")->size(), 1u);
}

TEST_F(StorageTest, RequestsAreStoredOnceAndFoundById) {
  auto store = open_store();
  ASSERT_TRUE(store);
  EXPECT_FALSE(store->find_request("pos-1")->has_value());
  ASSERT_TRUE(store->put_request("pos-1", origin_, 7, R"({"op":"x"})").is_ok());
  auto r = store->find_request("pos-1");
  ASSERT_TRUE(r.is_ok() && r->has_value());
  EXPECT_EQ((*r)->origin, origin_);
  EXPECT_EQ((*r)->seq, 7u);
  EXPECT_EQ((*r)->response, R"({"op":"x"})");
  // A second answer for the same request id is refused: the first one stands.
  EXPECT_FALSE(store->put_request("pos-1", origin_, 8, "{}").is_ok());
  EXPECT_EQ((*store->find_request("pos-1"))->seq, 7u);
}

TEST_F(StorageTest, MetaIsUpsertedAndEmptyVersionVectorIsEmpty) {
  auto store = open_store();
  ASSERT_TRUE(store);
  EXPECT_FALSE(store->get_meta("node_id")->has_value());
  ASSERT_TRUE(store->set_meta("node_id", "a").is_ok());
  ASSERT_TRUE(store->set_meta("node_id", "b").is_ok());
  EXPECT_EQ(store->get_meta("node_id")->value_or(""), "b");
  EXPECT_TRUE(store->version_vector()->empty());
  EXPECT_EQ(store->head(origin_)->seq, 0u);
  EXPECT_EQ(store->head(origin_)->hash, sync::Hash32{});
}

TEST_F(StorageTest, DamagedStoredOpBodyIsReportedAsCorruption) {
  {
    auto store = open_store();
    ASSERT_TRUE(store);
    ASSERT_TRUE(append(*store, make_op(OpKind::kEnroll, member_, 1, {})).is_ok());
  }
  // Overwrite the magic: the bytes no longer decode as an op.
  raw_exec(db_path_, "UPDATE ops SET body = X'00000000' || substr(body, 5)");
  auto store = open_store(OpenMode::kExisting);
  ASSERT_TRUE(store);
  auto got = store->get_op(origin_, 1);
  ASSERT_FALSE(got.is_ok());
  EXPECT_EQ(got.status().code(), Code::kCorruption);
}

TEST_F(StorageTest, AFloodOfOnePeersAlertsKeepsOnlyItsNewestAndLeavesOtherPeersAlertsAlone) {
  auto store = open_store();
  ASSERT_TRUE(store);
  NodeId quiet{}, noisy{};
  quiet[0] = 1;
  noisy[0] = 2;
  auto alerts = [](std::int64_t from, std::int64_t to) {
    std::vector<PeerAlert> v;
    for (std::int64_t id = from; id <= to; ++id) v.push_back({{}, id, id, 0, "refused_spend", "", "m"});
    return v;
  };
  ASSERT_TRUE(store->add_peer_alerts(quiet, alerts(1, 3)).is_ok());
  const auto flood = static_cast<std::int64_t>(limits::kPeerAlertsPerSourceMax) + 100;
  for (std::int64_t from = 1; from <= flood; from += 64) {
    ASSERT_TRUE(store->add_peer_alerts(noisy, alerts(from, std::min(from + 63, flood))).is_ok());
  }
  EXPECT_EQ(*store->peer_alerts_cursor(noisy), flood);
  EXPECT_EQ(*store->peer_alerts_cursor(quiet), 3);
  EXPECT_EQ(store->recent_peer_alerts(noisy, 100000)->size(), limits::kPeerAlertsPerSourceMax);
  EXPECT_EQ(store->recent_peer_alerts(quiet, 100000)->size(), 3u);
  // Re-delivered ids change nothing.
  ASSERT_TRUE(store->add_peer_alerts(quiet, alerts(2, 3)).is_ok());
  EXPECT_EQ(store->recent_peer_alerts(quiet, 100000)->size(), 3u);
}

TEST_F(StorageTest, OwnAlertIdsCanBeRaisedPastWhatHqAlreadyHolds) {
  auto store = open_store();
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->reserve_alert_ids(40).is_ok());  // before any alert: no sequence row yet
  ASSERT_TRUE(store->add_alert(Alert{0, 1, "refused_spend", "", "a"}).is_ok());
  ASSERT_TRUE(store->reserve_alert_ids(90).is_ok());
  ASSERT_TRUE(store->reserve_alert_ids(50).is_ok());  // never lowered
  ASSERT_TRUE(store->add_alert(Alert{0, 2, "refused_spend", "", "b"}).is_ok());
  auto after = store->alerts_after(0, 10);
  ASSERT_TRUE(after.is_ok());
  ASSERT_EQ(after->size(), 2u);
  EXPECT_EQ((*after)[0].id, 41);
  EXPECT_EQ((*after)[1].id, 91);
}

}  // namespace
}  // namespace outpost::storage
