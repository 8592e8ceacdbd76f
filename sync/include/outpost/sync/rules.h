// Program rules: tiers by rolling spend and the points earned per purchase. A value type with
// validation and the pure functions that derive a tier and an earn amount (tiers are never stored
// as truth: docs/architecture.md, "Data model"), and the canonical encoding of the rules document
// HQ signs with the root key and sync carries to every node (docs/program-rules.md, "Signed rules";
// pinned by golden bytes in tests/unit/sync_crdt_test.cc). Integer arithmetic only. Value types and
// pure functions; thread-compatible.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "outpost/base/status.h"
#include "outpost/crypto/crypto.h"
#include "outpost/sync/bytes.h"
#include "outpost/sync/roster.h"

namespace outpost::sync {

struct Tier {
  std::string name;
  std::uint64_t threshold_minor = 0;  // rolling-window spend at which the tier starts
  std::uint64_t points_per_unit = 0;  // points earned per `unit_minor` of purchase
};

struct ProgramRules {
  std::uint32_t version = 1;
  std::uint64_t unit_minor = 100;    // purchase amount per earn unit (100 = one currency unit)
  std::uint32_t window_months = 12;  // rolling window of spend for tiers, including this month
  std::vector<Tier> tiers;           // ascending thresholds; the first starts at 0

  // Checks: 1..16 tiers, first threshold 0, strictly ascending thresholds, unique names of 1..32
  // bytes without control characters, unit_minor >= 1, window 1..120 months, points_per_unit <=
  // 10000, version >= 1.
  Status validate() const;
  // Returns the highest tier whose threshold is <= spend_minor.
  const Tier& tier_for(std::uint64_t spend_minor) const;
  // Points earned for a purchase: floor(spend_minor / unit_minor) * points_per_unit.
  std::uint64_t points_for(std::uint64_t spend_minor, const Tier& tier) const;
};

// The rules a new chain starts with; documented in docs/program-rules.md.
ProgramRules default_rules();

// --- the HQ-signed rules document ---
inline constexpr std::array<std::uint8_t, 4> kRulesMagic = {'O', 'P', 'R', 'L'};
inline constexpr std::uint8_t kRulesFormat = 1;

// Rules as HQ issued them for one chain, with their canonical bytes and the root's signature.
// Invariant: body == encode_rules(rules, network_id, issued_ms).
struct SignedRules {
  ProgramRules rules;
  NetworkId network_id{};
  std::uint64_t issued_ms = 0;  // HQ's wall clock when it signed (reported, never used to order)
  Bytes body;
  crypto::Signature sig{};
};

// Returns the canonical bytes of `rules`, which must pass ProgramRules::validate() (checked).
Bytes encode_rules(const ProgramRules& rules, const NetworkId& network, std::uint64_t issued_ms);
// Parses canonical bytes (body and sig of the result are left empty). kCorruption for a wrong
// magic, truncation, trailing bytes, oversize or rules validate() refuses; kUnsupported for an
// unknown format.
Result<SignedRules> decode_rules(ByteView bytes);
// Encodes `rules` and signs them with the root key.
SignedRules sign_rules(const ProgramRules& rules, const NetworkId& network, std::uint64_t issued_ms,
                       const crypto::SigningKey& root);
// Returns the document if `sig` is the root's signature over `body`, the body decodes and it
// belongs to `network`. kPermission for a foreign signature or network; decoding errors as
// decode_rules().
Result<SignedRules> verify_rules(ByteView body, ByteView sig, const crypto::PublicKey& root,
                                 const NetworkId& network);

}  // namespace outpost::sync
