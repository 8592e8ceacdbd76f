#include "outpost/sync/rules.h"

#include <set>

#include "outpost/base/limits.h"

namespace outpost::sync {

Status ProgramRules::validate() const {
  if (version == 0) return Status::invalid("rules version must be at least 1");
  if (tiers.empty() || tiers.size() > limits::kRulesTiersMax) return Status::invalid("rules need 1 to 16 tiers");
  if (unit_minor == 0 || unit_minor > limits::kAmountMax) return Status::invalid("unit_minor out of range");
  if (window_months < 1 || window_months > 120) return Status::invalid("window_months must be 1..120");
  if (tiers.front().threshold_minor != 0) return Status::invalid("the first tier must start at 0");
  std::set<std::string> names;
  for (std::size_t i = 0; i < tiers.size(); ++i) {
    const Tier& t = tiers[i];
    if (t.name.empty() || t.name.size() > limits::kTierNameBytesMax) return Status::invalid("tier names must be 1..32 bytes");
    for (unsigned char c : t.name) {
      if (c < 0x20 || c == 0x7f) return Status::invalid("tier names must not hold control characters");
    }
    if (!names.insert(t.name).second) return Status::invalid("duplicate tier name " + t.name);
    if (t.points_per_unit > 10'000) return Status::invalid("points_per_unit above 10000");
    if (t.threshold_minor > limits::kAmountMax) return Status::invalid("threshold too large");
    if (i > 0 && t.threshold_minor <= tiers[i - 1].threshold_minor) {
      return Status::invalid("tier thresholds must ascend");
    }
  }
  return Status::ok();
}

const Tier& ProgramRules::tier_for(std::uint64_t spend_minor) const {
  OUTPOST_CHECK(!tiers.empty());
  const Tier* best = &tiers.front();
  for (const Tier& t : tiers) {
    if (t.threshold_minor <= spend_minor) best = &t;
  }
  return *best;
}

std::uint64_t ProgramRules::points_for(std::uint64_t spend_minor, const Tier& tier) const {
  // spend_minor <= kAmountMax (1e12) and points_per_unit <= 1e4: the product fits in uint64.
  return (spend_minor / unit_minor) * tier.points_per_unit;
}

ProgramRules default_rules() {
  ProgramRules r;
  r.version = 1;
  r.unit_minor = 100;
  r.window_months = 12;
  r.tiers = {{"member", 0, 1}, {"silver", 50'000, 2}, {"gold", 200'000, 3}};
  return r;
}

// Layout (docs/program-rules.md, "Signed rules"): magic 4, format u8, network 16, version u32,
// issued_ms u64, unit_minor u64, window_months u32, tier count u8, then per tier: name length u8,
// name, threshold_minor u64, points_per_unit u64. Little-endian.
Bytes encode_rules(const ProgramRules& rules, const NetworkId& network, std::uint64_t issued_ms) {
  OUTPOST_CHECK(rules.validate().is_ok());
  ByteWriter w;
  w.raw(kRulesMagic);
  w.u8(kRulesFormat);
  w.raw(network);
  w.u32(rules.version);
  w.u64(issued_ms);
  w.u64(rules.unit_minor);
  w.u32(rules.window_months);
  w.u8(static_cast<std::uint8_t>(rules.tiers.size()));
  for (const Tier& t : rules.tiers) {
    w.u8(static_cast<std::uint8_t>(t.name.size()));
    w.raw(ByteView(reinterpret_cast<const std::uint8_t*>(t.name.data()), t.name.size()));
    w.u64(t.threshold_minor);
    w.u64(t.points_per_unit);
  }
  Bytes out = w.take();
  OUTPOST_CHECK(out.size() <= limits::kRulesBytesMax);
  return out;
}

Result<SignedRules> decode_rules(ByteView bytes) {
  if (bytes.size() > limits::kRulesBytesMax) return Status::corruption("rules document too large");
  ByteReader r(bytes);
  std::array<std::uint8_t, 4> magic{};
  std::uint8_t format = 0;
  if (!r.raw(magic) || magic != kRulesMagic) return Status::corruption("not a rules document (bad magic)");
  if (!r.u8(format)) return Status::corruption("rules document truncated");
  if (format != kRulesFormat) return Status::unsupported("rules format " + std::to_string(format) + " is unknown");
  SignedRules out;
  std::uint8_t count = 0;
  if (!r.raw(out.network_id) || !r.u32(out.rules.version) || !r.u64(out.issued_ms) ||
      !r.u64(out.rules.unit_minor) || !r.u32(out.rules.window_months) || !r.u8(count)) {
    return Status::corruption("rules document truncated");
  }
  if (count == 0 || count > limits::kRulesTiersMax) return Status::corruption("rules document: bad tier count");
  for (std::uint8_t i = 0; i < count; ++i) {
    Tier t;
    std::uint8_t len = 0;
    if (!r.u8(len) || len == 0 || len > limits::kTierNameBytesMax) {
      return Status::corruption("rules document: bad tier name length");
    }
    t.name.resize(len);
    if (!r.raw(std::span<std::uint8_t>(reinterpret_cast<std::uint8_t*>(t.name.data()), len)) ||
        !r.u64(t.threshold_minor) || !r.u64(t.points_per_unit)) {
      return Status::corruption("rules document truncated");
    }
    out.rules.tiers.push_back(std::move(t));
  }
  if (!r.at_end()) return Status::corruption("rules document has trailing bytes");
  if (Status st = out.rules.validate(); !st.is_ok()) return Status::corruption("rules document: " + st.message());
  return out;
}

SignedRules sign_rules(const ProgramRules& rules, const NetworkId& network, std::uint64_t issued_ms,
                       const crypto::SigningKey& root) {
  SignedRules out;
  out.rules = rules;
  out.network_id = network;
  out.issued_ms = issued_ms;
  out.body = encode_rules(rules, network, issued_ms);
  out.sig = root.sign(out.body);
  return out;
}

Result<SignedRules> verify_rules(ByteView body, ByteView sig, const crypto::PublicKey& root,
                                 const NetworkId& network) {
  if (sig.size() != crypto::Signature{}.size()) return Status::corruption("rules signature must be 64 bytes");
  if (body.size() > limits::kRulesBytesMax) return Status::corruption("rules document too large");
  crypto::Signature s{};
  std::copy(sig.begin(), sig.end(), s.begin());
  if (!crypto::verify(root, body, s)) return Status::permission("rules are not signed by this chain's root key");
  OUTPOST_ASSIGN_OR_RETURN(SignedRules out, decode_rules(body));
  if (out.network_id != network) {
    return Status::permission("rules belong to network " + crypto::to_hex(out.network_id) + ", not " +
                              crypto::to_hex(network));
  }
  out.body.assign(body.begin(), body.end());
  out.sig = s;
  return out;
}

}  // namespace outpost::sync
