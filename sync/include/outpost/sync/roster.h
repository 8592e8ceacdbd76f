// Identity of a chain's nodes: node certificates and the roster (every certificate plus the
// revocations, versioned), each signed by the chain's HQ root key (Ed25519). The canonical
// encodings are specified in docs/roster-format.md and pinned by golden vectors in
// tests/unit/sync_roster_test.cc. Pure functions and value types; thread-compatible (share a
// verified Roster as std::shared_ptr<const Roster> and it is safe to read from any thread).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "outpost/base/status.h"
#include "outpost/crypto/crypto.h"
#include "outpost/sync/bytes.h"
#include "outpost/sync/hlc.h"
#include "outpost/sync/op.h"

namespace outpost::sync {

// 16 random bytes created by `outpost hq init`: names one chain. Links mix it into the Noise
// prologue, certificates and rosters carry it, so nothing of one chain is accepted by another.
using NetworkId = std::array<std::uint8_t, 16>;

inline constexpr std::array<std::uint8_t, 4> kCertificateMagic = {'O', 'P', 'C', 'T'};
inline constexpr std::uint8_t kCertificateFormat = 1;
// Bytes of a certificate encoding before the node name (docs/roster-format.md).
inline constexpr std::size_t kCertificateFixedBytes = 118;
inline constexpr std::array<std::uint8_t, 4> kRosterMagic = {'O', 'P', 'R', 'S'};
inline constexpr std::uint8_t kRosterFormat = 1;
// Bytes of a roster encoding before its first certificate (up to and including the count).
inline constexpr std::size_t kRosterHeaderBytes = 45;

enum class NodeRole : std::uint8_t { kStore = 1, kHq = 2 };

// Returns "store" or "hq".
const char* role_name(NodeRole role);
// Parses "store" / "hq"; returns false for anything else.
bool parse_role(const std::string& text, NodeRole& out);

// Binds a node id to its name, role, keys and validity period within one network.
struct Certificate {
  NetworkId network_id{};
  NodeId node_id{};
  NodeRole role = NodeRole::kStore;
  crypto::PublicKey signing_key{};   // Ed25519: verifies the ops this node signs
  crypto::PublicKey noise_key{};     // X25519: the node's Noise static key on links
  std::uint64_t valid_from_ms = 0;   // first valid millisecond (inclusive)
  std::uint64_t valid_until_ms = 0;  // end of validity (exclusive)
  std::string name;
  bool operator==(const Certificate&) const = default;

  // True when valid_from_ms <= now_ms < valid_until_ms.
  bool valid_at(std::uint64_t now_ms) const {
    return valid_from_ms <= now_ms && now_ms < valid_until_ms;
  }
};

// A certificate together with its canonical bytes and the root's signature over them.
// Invariant: body == encode_certificate(cert).
struct SignedCertificate {
  Certificate cert;
  Bytes body;
  crypto::Signature sig{};
  bool operator==(const SignedCertificate&) const = default;
};

// Checks the shape rules: non-zero ids and keys, known role, a name of 1..kNameBytesMax bytes
// without control characters, valid_from_ms < valid_until_ms. kInvalidArgument otherwise.
Status validate_certificate(const Certificate& cert);
// Returns the canonical bytes of `cert`, which must satisfy validate_certificate().
Bytes encode_certificate(const Certificate& cert);
// Parses canonical bytes. kCorruption on a wrong magic, truncation, trailing bytes, oversize or
// a value validate_certificate() refuses; kUnsupported on an unknown format version.
Result<Certificate> decode_certificate(ByteView bytes);
// Encodes `cert` and signs it with the root key.
SignedCertificate sign_certificate(const Certificate& cert, const crypto::SigningKey& root);
// Decodes `body` and checks `sig` under `root`. kPermission if the root did not sign it;
// decoding errors as decode_certificate().
Result<SignedCertificate> verify_certificate(ByteView body, const crypto::Signature& sig,
                                             const crypto::PublicKey& root);
// Wire form inside rosters and handshake payloads: u16 body length, body, 64-byte signature.
void write_signed_certificate(ByteWriter& w, const SignedCertificate& sc);
// Reads the wire form and decodes the body; does NOT check the signature (verify_certificate).
Result<SignedCertificate> read_signed_certificate(ByteReader& r);

// Ops of `node_id` with seq <= after_seq stay valid; later ones are refused everywhere, and the
// node can no longer connect to anyone.
struct Revocation {
  NodeId node_id{};
  std::uint64_t after_seq = 0;
  bool operator==(const Revocation&) const = default;
};

// The HQ-signed list of a network's nodes. Certificates of revoked nodes stay listed so their
// ops up to the cutoff remain verifiable.
struct Roster {
  NetworkId network_id{};
  std::uint64_t version = 0;  // 1, 2, 3, ...: a node accepts only a strictly newer version
  Hlc issued;                 // HQ's clock when it signed (reported, never used for ordering)
  std::vector<SignedCertificate> certificates;  // strictly ascending node id
  std::vector<Revocation> revocations;          // strictly ascending node id, each a listed node
  bool operator==(const Roster&) const = default;

  // Returns the listed certificate of `id` (revoked or not), or nullptr.
  const SignedCertificate* find(const NodeId& id) const;
  // Returns the certificate whose name is exactly `name`, or nullptr.
  const SignedCertificate* find_by_name(const std::string& name) const;
  // Returns the revocation of `id`, or nullptr.
  const Revocation* revocation(const NodeId& id) const;
  bool is_revoked(const NodeId& id) const { return revocation(id) != nullptr; }
  // Returns the keys of a listed node (revoked or not), or nullopt.
  std::optional<crypto::PublicKey> signing_key(const NodeId& id) const;
  std::optional<crypto::PublicKey> noise_key(const NodeId& id) const;
  // True iff `origin` is listed and, if revoked, seq <= its revocation's after_seq. False for an
  // unknown origin: its ops cannot be verified, so they are not allowed.
  bool op_allowed(const NodeId& origin, std::uint64_t seq) const;

  // Inserts `sc` at its place, or replaces the certificate of the same node id (renewal: the
  // signing key and role must not change, or its old ops would stop verifying). kInvalidArgument
  // on a different network, a key/role change, or a name another node already uses.
  Status put_certificate(SignedCertificate sc);
  // Adds a revocation for a listed node. kNotFound for an unlisted node, kInvalidArgument if it
  // is already revoked (revocations are permanent; a cutoff never changes).
  Status add_revocation(const Revocation& revocation);
};

// A roster with its canonical bytes and the root's signature over them.
// Invariant: body == encode_roster(roster).
struct SignedRoster {
  Roster roster;
  Bytes body;
  crypto::Signature sig{};
};

// Checks structure: version >= 1, at most kRosterNodesMax certificates and revocations, strictly
// ascending unique node ids, unique names, every certificate valid and of the roster's network,
// every revocation naming a listed node. kInvalidArgument otherwise.
Status validate_roster(const Roster& roster);
// Returns the canonical bytes of `roster`, which must satisfy validate_roster().
Bytes encode_roster(const Roster& roster);
// Parses canonical bytes. kCorruption on anything malformed, oversize (kRosterBytesMax), out of
// order or trailing; kUnsupported on an unknown format version. Does not check signatures.
Result<Roster> decode_roster(ByteView bytes);
// Encodes `roster` and signs it with the root key.
SignedRoster sign_roster(const Roster& roster, const crypto::SigningKey& root);
// Returns the roster if `sig` is the root's signature over `body`, the body decodes, it belongs
// to `network` and (when check_certificate_signatures) every certificate is root-signed.
// kPermission for a wrong signature or network, decoding errors as decode_roster(). Pass
// check_certificate_signatures = false only for a roster that was fully verified when it was
// accepted and stored (its own signature still covers every byte).
Result<SignedRoster> verify_roster(ByteView body, ByteView sig, const crypto::PublicKey& root,
                                   const NetworkId& network,
                                   bool check_certificate_signatures = true);
// Checks that `next` may replace `current`: a strictly newer version of the same network that
// keeps every listed node (same signing key and role) and every revocation (same cutoff).
// kRefused for an older or equal version (a stale offer, not an attack), kPermission for a
// successor that would drop or change what an earlier roster established.
Status check_roster_successor(const Roster& current, const Roster& next);

// Decides whether a link peer presenting `peer` may talk to this node (docs/security.md, "Link
// protocol"). Checks, in order: the root signed it, it names this network, it is valid at
// now_ms, it is not this node itself, it is not revoked in `roster`, and `roster` lists this
// exact certificate, or does not list the node but the peer announces a newer roster than ours
// (we lag behind HQ; sync fetches the newer roster). A null roster admits any root-signed,
// valid certificate. kPermission with the reason otherwise. The caller still checks that the
// Noise static key of the handshake equals peer.cert.noise_key.
Status check_peer_certificate(const SignedCertificate& peer, std::uint64_t peer_roster_version,
                              const crypto::PublicKey& root, const NetworkId& network,
                              const NodeId& self, const Roster* roster, std::uint64_t now_ms);

// Lower-case hex of the first 8 bytes of SHA-256(key): what operators compare out of band.
std::string key_fingerprint(const crypto::PublicKey& key);

}  // namespace outpost::sync
