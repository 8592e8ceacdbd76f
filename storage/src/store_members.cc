// The Store's member rows: CRDT state per member, its field index, PIN failures, and the
// answers kept for idempotent requests (docs/architecture.md, "Data model").
#include "store_internal.h"

namespace outpost::storage {

using detail::bv;
using detail::to_array;
using sync::Field;
using sync::MemberId;
using sync::MemberState;
using sync::NodeId;
using GC = detail::GCounterId;

namespace {

// Reads every CRDT row for the members selected by `where` (bound to ?1 when member != null).
Status load_members_where(Database& db, const MemberId* member,
                          std::map<MemberId, MemberState>& out) {
  const std::string where = member ? " WHERE member=?1" : "";
  auto bind = [&](Statement& s) {
    if (member) s.bind_blob(1, bv(*member));
  };
  auto read_id = [](const Statement& s, int col, NodeId& id) { return to_array(s.blob(col), id); };
  {
    OUTPOST_ASSIGN_OR_RETURN(Statement s, db.prepare("SELECT member, field, value, hlc_wall, "
                                                     "hlc_logical, origin FROM member_fields" +
                                                     where));
    bind(s);
    while (true) {
      OUTPOST_ASSIGN_OR_RETURN(bool row, s.step());
      if (!row) break;
      MemberId id{};
      NodeId origin{};
      if (!read_id(s, 0, id) || !read_id(s, 5, origin)) return Status::corruption("bad field row");
      sync::Hlc hlc{static_cast<std::uint64_t>(s.int64(3)), static_cast<std::uint32_t>(s.int64(4))};
      out[id].fields[static_cast<Field>(s.int64(1))].assign(s.text(2), hlc, origin);
    }
  }
  {
    OUTPOST_ASSIGN_OR_RETURN(
        Statement s, db.prepare("SELECT member, account, node, credit, debit FROM escrow" + where));
    bind(s);
    while (true) {
      OUTPOST_ASSIGN_OR_RETURN(bool row, s.step());
      if (!row) break;
      MemberId id{};
      NodeId node{};
      if (!read_id(s, 0, id) || !read_id(s, 2, node)) return Status::corruption("bad escrow row");
      MemberState& m = out[id];
      sync::EscrowCounter& c = s.int64(1) == 1 ? m.points : m.wallet;
      // Zero entries are not state: skip them so loaded state equals replayed state.
      if (s.int64(3) > 0)
        OUTPOST_RETURN_IF_ERROR(c.credit(node, static_cast<std::uint64_t>(s.int64(3))));
      if (s.int64(4) > 0)
        OUTPOST_RETURN_IF_ERROR(c.apply_debit(node, static_cast<std::uint64_t>(s.int64(4))));
    }
  }
  {
    OUTPOST_ASSIGN_OR_RETURN(
        Statement s,
        db.prepare("SELECT member, account, src, dst, amount FROM escrow_moves" + where));
    bind(s);
    while (true) {
      OUTPOST_ASSIGN_OR_RETURN(bool row, s.step());
      if (!row) break;
      MemberId id{};
      NodeId src{}, dst{};
      if (!read_id(s, 0, id) || !read_id(s, 2, src) || !read_id(s, 3, dst)) {
        return Status::corruption("bad move row");
      }
      MemberState& m = out[id];
      sync::EscrowCounter& c = s.int64(1) == 1 ? m.points : m.wallet;
      OUTPOST_RETURN_IF_ERROR(c.apply_move(src, dst, static_cast<std::uint64_t>(s.int64(4))));
    }
  }
  {
    OUTPOST_ASSIGN_OR_RETURN(
        Statement s,
        db.prepare("SELECT member, counter, node, month, amount FROM gcounters" + where));
    bind(s);
    while (true) {
      OUTPOST_ASSIGN_OR_RETURN(bool row, s.step());
      if (!row) break;
      MemberId id{};
      NodeId node{};
      if (!read_id(s, 0, id) || !read_id(s, 2, node)) return Status::corruption("bad counter row");
      MemberState& m = out[id];
      std::int64_t which = s.int64(1);
      sync::GCounter& g = which == GC::kSpend           ? m.spend
                          : which == GC::kSpendReversed ? m.spend_reversed
                                                        : m.visits;
      OUTPOST_RETURN_IF_ERROR(g.add(node, static_cast<std::uint32_t>(s.int64(3)),
                                    static_cast<std::uint64_t>(s.int64(4))));
    }
  }
  {
    OUTPOST_ASSIGN_OR_RETURN(
        Statement s,
        db.prepare("SELECT member, hlc_wall, hlc_logical, origin FROM pin_failures" + where));
    bind(s);
    while (true) {
      OUTPOST_ASSIGN_OR_RETURN(bool row, s.step());
      if (!row) break;
      MemberId id{};
      NodeId origin{};
      if (!read_id(s, 0, id) || !read_id(s, 3, origin))
        return Status::corruption("bad PIN failure row");
      out[id].pin_failures.add(
          {static_cast<std::uint64_t>(s.int64(1)), static_cast<std::uint32_t>(s.int64(2))}, origin);
    }
  }
  return Status::ok();
}

}  // namespace

Result<std::optional<MemberState>> Store::load_member(const MemberId& member) {
  std::map<MemberId, MemberState> all;
  OUTPOST_RETURN_IF_ERROR(load_members_where(*db_, &member, all));
  auto it = all.find(member);
  if (it == all.end()) return std::optional<MemberState>();
  return std::optional<MemberState>(std::move(it->second));
}

Result<std::map<MemberId, MemberState>> Store::load_all_members() {
  std::map<MemberId, MemberState> all;
  OUTPOST_RETURN_IF_ERROR(load_members_where(*db_, nullptr, all));
  return all;
}

Result<std::map<MemberId, std::uint64_t>> Store::enroll_times() {
  OUTPOST_ASSIGN_OR_RETURN(Statement s,
                           db_->prepare("SELECT member, min(hlc_wall) FROM ops WHERE kind = ?1 "
                                        "GROUP BY member"));
  s.bind(1, static_cast<std::int64_t>(sync::OpKind::kEnroll));
  std::map<MemberId, std::uint64_t> out;
  while (true) {
    OUTPOST_ASSIGN_OR_RETURN(bool row, s.step());
    if (!row) break;
    MemberId id{};
    if (!to_array(s.blob(0), id))
      return Status::corruption("stored op row has a damaged member id");
    out[id] = static_cast<std::uint64_t>(s.int64(1));
  }
  return out;
}

namespace {

// The value of `key` in `map`, or 0 when absent (CRDT entries start at zero).
template <typename Map, typename Key>
std::uint64_t value_or_zero(const Map& map, const Key& key) {
  auto it = map.find(key);
  return it == map.end() ? 0 : it->second;
}

}  // namespace

// CRDT entries only grow and are never removed, so the rows to write are the entries of `m` that
// are new or changed against `before`: a top-up writes one escrow row, not the whole member (fewer
// statements, and fewer dirty pages for the commit to write to the WAL). Statements are prepared
// only when a row of theirs changed.
Status Store::save_member(const MemberId& id, const MemberState& m, const MemberState& before) {
  constexpr const char* kFieldSql =
      "INSERT INTO member_fields(member, field, value, hlc_wall, hlc_logical, origin) "
      "VALUES(?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(member, field) DO UPDATE SET "
      "value=excluded.value, hlc_wall=excluded.hlc_wall, hlc_logical=excluded.hlc_logical, "
      "origin=excluded.origin";
  constexpr const char* kEscrowSql =
      "INSERT INTO escrow(member, account, node, credit, debit) VALUES(?1, ?2, ?3, ?4, ?5) "
      "ON CONFLICT(member, account, node) DO UPDATE SET credit=excluded.credit, "
      "debit=excluded.debit";
  constexpr const char* kMoveSql =
      "INSERT INTO escrow_moves(member, account, src, dst, amount) VALUES(?1, ?2, ?3, ?4, ?5) "
      "ON CONFLICT(member, account, src, dst) DO UPDATE SET amount=excluded.amount";
  constexpr const char* kCounterSql =
      "INSERT INTO gcounters(member, counter, node, month, amount) VALUES(?1, ?2, ?3, ?4, ?5) "
      "ON CONFLICT(member, counter, node, month) DO UPDATE SET amount=excluded.amount";

  for (const auto& [f, reg] : m.fields) {
    if (!reg.is_set()) continue;
    if (auto old = before.fields.find(f); old != before.fields.end() && old->second == reg)
      continue;
    OUTPOST_ASSIGN_OR_RETURN(Statement s, db_->prepare(kFieldSql));
    s.bind_blob(1, bv(id))
        .bind(2, static_cast<std::int64_t>(f))
        .bind(3, reg.value())
        .bind(4, static_cast<std::int64_t>(reg.hlc().wall_ms))
        .bind(5, static_cast<std::int64_t>(reg.hlc().logical))
        .bind_blob(6, bv(reg.origin()));
    OUTPOST_RETURN_IF_ERROR(s.run());
  }
  for (int account = 1; account <= 2; ++account) {
    const sync::EscrowCounter& c = account == 1 ? m.points : m.wallet;
    const sync::EscrowCounter& was = account == 1 ? before.points : before.wallet;
    std::map<NodeId, std::pair<std::uint64_t, std::uint64_t>> rows;
    for (const auto& [n, v] : c.credits()) rows[n].first = v;
    for (const auto& [n, v] : c.debits()) rows[n].second = v;
    for (const auto& [n, cd] : rows) {
      if (cd.first == value_or_zero(was.credits(), n) &&
          cd.second == value_or_zero(was.debits(), n))
        continue;
      OUTPOST_ASSIGN_OR_RETURN(Statement s, db_->prepare(kEscrowSql));
      s.bind_blob(1, bv(id))
          .bind(2, account)
          .bind_blob(3, bv(n))
          .bind(4, static_cast<std::int64_t>(cd.first))
          .bind(5, static_cast<std::int64_t>(cd.second));
      OUTPOST_RETURN_IF_ERROR(s.run());
    }
    for (const auto& [k, v] : c.moves()) {
      if (v == value_or_zero(was.moves(), k)) continue;
      OUTPOST_ASSIGN_OR_RETURN(Statement s, db_->prepare(kMoveSql));
      s.bind_blob(1, bv(id))
          .bind(2, account)
          .bind_blob(3, bv(k.first))
          .bind_blob(4, bv(k.second))
          .bind(5, static_cast<std::int64_t>(v));
      OUTPOST_RETURN_IF_ERROR(s.run());
    }
  }
  const std::tuple<std::int64_t, const sync::GCounter*, const sync::GCounter*> counters[] = {
      {GC::kSpend, &m.spend, &before.spend},
      {GC::kSpendReversed, &m.spend_reversed, &before.spend_reversed},
      {GC::kVisits, &m.visits, &before.visits}};
  for (const auto& [which, g, was] : counters) {
    for (const auto& [k, v] : g->entries()) {
      if (v == value_or_zero(was->entries(), k)) continue;
      OUTPOST_ASSIGN_OR_RETURN(Statement s, db_->prepare(kCounterSql));
      s.bind_blob(1, bv(id))
          .bind(2, which)
          .bind_blob(3, bv(k.first))
          .bind(4, static_cast<std::int64_t>(k.second))
          .bind(5, static_cast<std::int64_t>(v));
      OUTPOST_RETURN_IF_ERROR(s.run());
    }
  }
  if (!(m.pin_failures == before.pin_failures))
    OUTPOST_RETURN_IF_ERROR(save_pin_failures(id, m.pin_failures));
  return Status::ok();
}

// The newest PIN failures change as a whole (one added, the oldest dropped): rewrite the member's
// few rows.
Status Store::save_pin_failures(const MemberId& id, const sync::RecentEvents& failures) {
  OUTPOST_ASSIGN_OR_RETURN(Statement del, db_->prepare("DELETE FROM pin_failures WHERE member=?1"));
  del.bind_blob(1, bv(id));
  OUTPOST_RETURN_IF_ERROR(del.run());
  for (const auto& e : failures.events()) {
    OUTPOST_ASSIGN_OR_RETURN(Statement s,
                             db_->prepare("INSERT INTO pin_failures(member, hlc_wall, hlc_logical, "
                                          "origin) VALUES(?1, ?2, ?3, ?4)"));
    s.bind_blob(1, bv(id))
        .bind(2, static_cast<std::int64_t>(e.hlc.wall_ms))
        .bind(3, static_cast<std::int64_t>(e.hlc.logical))
        .bind_blob(4, bv(e.origin));
    OUTPOST_RETURN_IF_ERROR(s.run());
  }
  return Status::ok();
}

Result<std::vector<MemberId>> Store::find_members(Field field, const std::string& value) {
  OUTPOST_ASSIGN_OR_RETURN(
      Statement s, db_->prepare("SELECT member FROM member_fields WHERE field=?1 AND value=?2 "
                                "ORDER BY member LIMIT 100"));
  s.bind(1, static_cast<std::int64_t>(field)).bind(2, value);
  std::vector<MemberId> out;
  while (true) {
    OUTPOST_ASSIGN_OR_RETURN(bool row, s.step());
    if (!row) break;
    MemberId id{};
    if (!to_array(s.blob(0), id)) return Status::corruption("bad member id row");
    out.push_back(id);
  }
  return out;
}

Result<std::optional<StoredRequest>> Store::find_request(const std::string& request_id) {
  OUTPOST_ASSIGN_OR_RETURN(
      Statement s, db_->prepare("SELECT origin, seq, response FROM requests WHERE request_id=?1"));
  s.bind(1, request_id);
  OUTPOST_ASSIGN_OR_RETURN(bool row, s.step());
  if (!row) return std::optional<StoredRequest>();
  StoredRequest r;
  if (!to_array(s.blob(0), r.origin)) return Status::corruption("bad request row");
  r.seq = static_cast<std::uint64_t>(s.int64(1));
  r.response = s.text(2);
  return std::optional<StoredRequest>(std::move(r));
}

Status Store::put_request(const std::string& request_id, const NodeId& origin, std::uint64_t seq,
                          const std::string& response) {
  OUTPOST_ASSIGN_OR_RETURN(Statement s, db_->prepare("INSERT INTO requests(request_id, origin, "
                                                     "seq, response) VALUES(?1, ?2, ?3, ?4)"));
  s.bind(1, request_id)
      .bind_blob(2, bv(origin))
      .bind(3, static_cast<std::int64_t>(seq))
      .bind(4, response);
  return s.run();
}

Result<std::vector<sync::MemberId>> Store::members_with_balances_after(const sync::MemberId& after,
                                                                       std::size_t limit) {
  OUTPOST_ASSIGN_OR_RETURN(Statement s,
                           db_->prepare("SELECT DISTINCT member FROM escrow WHERE member > ?1 "
                                        "ORDER BY member LIMIT ?2"));
  s.bind_blob(1, bv(after)).bind(2, static_cast<std::int64_t>(limit));
  std::vector<sync::MemberId> out;
  while (true) {
    OUTPOST_ASSIGN_OR_RETURN(bool row, s.step());
    if (!row) break;
    sync::MemberId id{};
    if (!to_array(s.blob(0), id))
      return Status::corruption("stored escrow row has a damaged member id");
    out.push_back(id);
  }
  return out;
}

}  // namespace outpost::storage
