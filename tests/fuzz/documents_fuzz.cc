// libFuzzer target for the HQ-signed document decoders, which arrive in sync BLOB messages and
// audit bundles: roster and certificate (sync/roster.h), signed program rules (sync/rules.h),
// checkpoint and tree head set (sync/checkpoint.h), and the signed-record framing of bundle files
// (read_frame). The whole input is tried as each document. On success:
//   - the decoder's own shape rules hold (validate_*), and encoding the result gives back exactly
//     the input (canonical: one document, one encoding, one signature);
//   - the successor checks run against the world's own documents and never crash, and no roster
//     or tree head set may succeed itself (a successor must be newer);
//   - verify_* with the world's root key agree with the decoder and never crash.
// read_frame walks the input as a bundle file: every frame lies inside it and the walk ends.
// Any crash, sanitizer report or broken invariant (FUZZ_CHECK) is a finding.
#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "fuzz_world.h"
#include "outpost/base/limits.h"
#include "outpost/sync/checkpoint.h"
#include "outpost/sync/roster.h"
#include "outpost/sync/rules.h"

namespace {

using namespace outpost;
using fuzz::Bytes;
using fuzz::ByteView;

bool same(const Bytes& a, ByteView b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin());
}

void fuzz_roster(ByteView input) {
  auto roster = sync::decode_roster(input);
  if (!roster.is_ok()) return;
  FUZZ_CHECK(sync::validate_roster(*roster).is_ok());
  FUZZ_CHECK(same(sync::encode_roster(*roster), input));
  for (const auto& sc : roster->certificates) {
    FUZZ_CHECK(same(sync::encode_certificate(sc.cert), sc.body));
    (void)roster->op_allowed(sc.cert.node_id, 1);
  }
  const fuzz::World& w = fuzz::world();
  (void)sync::check_roster_successor(w.roster.roster, *roster);
  (void)sync::check_roster_successor(*roster, w.roster_v2.roster);
  FUZZ_CHECK(!sync::check_roster_successor(*roster, *roster).is_ok());
}

void fuzz_certificate(ByteView input) {
  auto cert = sync::decode_certificate(input);
  if (cert.is_ok()) {
    FUZZ_CHECK(sync::validate_certificate(*cert).is_ok());
    FUZZ_CHECK(same(sync::encode_certificate(*cert), input));
  }
  sync::ByteReader r(input);
  auto sc = sync::read_signed_certificate(r);
  if (!sc.is_ok()) return;
  sync::ByteWriter w;
  sync::write_signed_certificate(w, *sc);
  FUZZ_CHECK(w.bytes().size() == r.position() &&
             std::equal(w.bytes().begin(), w.bytes().end(), input.begin()));
  const fuzz::World& world = fuzz::world();
  (void)sync::check_peer_certificate(*sc, 1, world.root->public_key(), world.network,
                                     world.nodes[0].id, &world.roster.roster, fuzz::kNowMs);
}

void fuzz_rules(ByteView input) {
  auto rules = sync::decode_rules(input);
  if (!rules.is_ok()) return;
  FUZZ_CHECK(rules->rules.validate().is_ok());
  FUZZ_CHECK(same(sync::encode_rules(rules->rules, rules->network_id, rules->issued_ms), input));
  // The derived values never overflow or leave the tiers.
  const sync::Tier& tier = rules->rules.tier_for(limits::kAmountMax);
  (void)rules->rules.points_for(limits::kAmountMax, tier);
  FUZZ_CHECK(&rules->rules.tier_for(0) == &rules->rules.tiers.front());
}

void fuzz_checkpoints(ByteView input) {
  auto cp = sync::decode_checkpoint(input);
  if (cp.is_ok()) {
    FUZZ_CHECK(sync::validate_checkpoint(*cp).is_ok());
    FUZZ_CHECK(same(sync::encode_checkpoint(*cp), input));
  }
  auto set = sync::decode_tree_head_set(input);
  if (!set.is_ok()) return;
  FUZZ_CHECK(sync::validate_tree_head_set(*set).is_ok());
  FUZZ_CHECK(same(sync::encode_tree_head_set(*set), input));
  for (const auto& h : set->heads) FUZZ_CHECK(set->find(h.origin) == &h);
  (void)set->total_ops();
  const fuzz::World& w = fuzz::world();
  (void)sync::check_tree_head_successor(w.tree_heads.set, *set);
  (void)sync::check_tree_head_successor(*set, w.tree_heads.set);
  FUZZ_CHECK(!sync::check_tree_head_successor(*set, *set).is_ok());
}

// The input as a signed document: its last 64 bytes are the signature over the rest.
void fuzz_verify(ByteView input) {
  if (input.size() < 64) return;
  const ByteView body = input.first(input.size() - 64), sig = input.last(64);
  const fuzz::World& w = fuzz::world();
  const crypto::PublicKey& root = w.root->public_key();
  auto roster = sync::verify_roster(body, sig, root, w.network);
  if (roster.is_ok()) FUZZ_CHECK(sync::decode_roster(body).is_ok());
  auto rules = sync::verify_rules(body, sig, root, w.network);
  if (rules.is_ok()) FUZZ_CHECK(sync::decode_rules(body).is_ok());
  auto cp = sync::verify_checkpoint(body, sig, root);
  if (cp.is_ok()) FUZZ_CHECK(sync::decode_checkpoint(body).is_ok());
  auto set = sync::verify_tree_head_set(body, sig, root);
  if (set.is_ok()) FUZZ_CHECK(sync::decode_tree_head_set(body).is_ok());
}

void fuzz_frames(ByteView input) {
  std::size_t offset = 0;
  for (std::size_t frames = 0; offset < input.size(); ++frames) {
    FUZZ_CHECK(frames <= input.size() / 68);  // every frame takes at least 4 + 64 bytes
    const std::size_t before = offset;
    auto f = sync::read_frame(input, offset, limits::kRosterBytesMax);
    if (!f.is_ok()) {
      FUZZ_CHECK(offset == before);
      return;
    }
    FUZZ_CHECK(offset == before + 4 + f->body.size() + 64 && offset <= input.size());
    FUZZ_CHECK(f->body.data() == input.data() + before + 4);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes, std::size_t size) {
  const ByteView input(bytes, size);
  fuzz_roster(input);
  fuzz_certificate(input);
  fuzz_rules(input);
  fuzz_checkpoints(input);
  fuzz_verify(input);
  fuzz_frames(input);
  return 0;
}
