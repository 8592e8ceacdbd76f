// Helpers shared by the Store's source files (store.cc, store_members.cc, store_documents.cc,
// store_peers.cc). Not part of the storage library's interface.
#pragma once

#include <algorithm>
#include <cstdint>
#include <span>
#include <vector>

#include "outpost/storage/store.h"

namespace outpost::storage::detail {

// The ids of the grow-only counters in table gcounters (schema 1). Never renumber.
enum GCounterId : std::int64_t { kSpend = 1, kSpendReversed = 2, kVisits = 3 };

// A fixed-size id or key as a blob to bind.
template <typename A>
std::span<const std::uint8_t> bv(const A& a) {
  return {a.data(), a.size()};
}

// Copies a blob into a fixed-size id; false when the sizes differ (a damaged row).
template <typename A>
bool to_array(const std::vector<std::uint8_t>& v, A& out) {
  if (v.size() != out.size()) return false;
  std::copy(v.begin(), v.end(), out.begin());
  return true;
}

// The signed op stored in columns (body_col, sig_col) of the current row.
inline Result<sync::SignedOp> row_to_op(const Statement& s, int body_col, int sig_col) {
  auto body = s.blob(body_col);
  auto sig = s.blob(sig_col);
  auto op = sync::load_signed_op(body, sig);
  if (!op.is_ok()) return op.status().with_context("stored op is damaged");
  return op;
}

}  // namespace outpost::storage::detail
