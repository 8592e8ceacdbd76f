// Certificates and rosters: canonical encodings (docs/roster-format.md), signatures under the
// HQ root key, successor rules and link-peer admission.
#include "outpost/sync/roster.h"

#include <algorithm>
#include <set>

#include "outpost/base/limits.h"

namespace outpost::sync {

namespace {

bool is_zero(std::span<const std::uint8_t> b) {
  return std::all_of(b.begin(), b.end(), [](std::uint8_t x) { return x == 0; });
}

bool valid_name(const std::string& name) {
  if (name.empty() || name.size() > limits::kNameBytesMax) return false;
  return std::none_of(name.begin(), name.end(), [](char c) {
    auto u = static_cast<unsigned char>(c);
    return u < 0x20 || u == 0x7f;
  });
}

crypto::Signature to_signature(ByteView sig) {
  crypto::Signature s{};
  std::copy(sig.begin(), sig.end(), s.begin());
  return s;
}

}  // namespace

const char* role_name(NodeRole role) {
  switch (role) {
    case NodeRole::kStore:
      return "store";
    case NodeRole::kHq:
      return "hq";
  }
  return "unknown";
}

bool parse_role(const std::string& text, NodeRole& out) {
  if (text == "store") {
    out = NodeRole::kStore;
    return true;
  }
  if (text == "hq") {
    out = NodeRole::kHq;
    return true;
  }
  return false;
}

// --- certificates ---------------------------------------------------------------------------

Status validate_certificate(const Certificate& c) {
  if (is_zero(c.network_id)) return Status::invalid("certificate: network id is zero");
  if (is_zero(c.node_id)) return Status::invalid("certificate: node id is zero");
  if (c.role != NodeRole::kStore && c.role != NodeRole::kHq) {
    return Status::invalid("certificate: unknown role");
  }
  if (is_zero(c.signing_key)) return Status::invalid("certificate: signing key is zero");
  if (is_zero(c.noise_key)) return Status::invalid("certificate: noise key is zero");
  if (c.valid_from_ms >= c.valid_until_ms) {
    return Status::invalid("certificate: validity period is empty");
  }
  if (!valid_name(c.name)) {
    return Status::invalid("certificate: name must be 1 to " +
                           std::to_string(limits::kNameBytesMax) +
                           " bytes without control characters");
  }
  return Status::ok();
}

Bytes encode_certificate(const Certificate& c) {
  OUTPOST_CHECK(validate_certificate(c).is_ok());
  ByteWriter w;
  w.raw(kCertificateMagic);
  w.u8(kCertificateFormat);
  w.raw(c.network_id);
  w.raw(c.node_id);
  w.u8(static_cast<std::uint8_t>(c.role));
  w.raw(c.signing_key);
  w.raw(c.noise_key);
  w.u64(c.valid_from_ms);
  w.u64(c.valid_until_ms);
  OUTPOST_CHECK(w.bytes().size() == kCertificateFixedBytes);
  w.str16(c.name);
  // Invariant: every certificate fits the bound the decoder enforces.
  OUTPOST_CHECK(w.bytes().size() <= limits::kCertificateBytesMax);
  return w.take();
}

Result<Certificate> decode_certificate(ByteView bytes) {
  if (bytes.size() > limits::kCertificateBytesMax) {
    return Status::corruption("certificate encoding too large");
  }
  ByteReader r(bytes);
  std::array<std::uint8_t, 4> magic{};
  std::uint8_t format = 0, role = 0;
  Certificate c;
  if (!r.raw(magic) || magic != kCertificateMagic) {
    return Status::corruption("not a certificate (bad magic)");
  }
  if (!r.u8(format)) return Status::corruption("truncated certificate");
  if (format != kCertificateFormat) {
    return Status::unsupported("certificate format " + std::to_string(format) +
                               " is not supported");
  }
  bool ok = r.raw(c.network_id) && r.raw(c.node_id) && r.u8(role) && r.raw(c.signing_key) &&
            r.raw(c.noise_key) && r.u64(c.valid_from_ms) && r.u64(c.valid_until_ms) &&
            r.str16(c.name, limits::kNameBytesMax);
  if (!ok) return Status::corruption("truncated or oversize certificate");
  if (!r.at_end()) return Status::corruption("trailing bytes after certificate");
  if (role != 1 && role != 2) return Status::corruption("unknown role " + std::to_string(role));
  c.role = static_cast<NodeRole>(role);
  Status st = validate_certificate(c);
  if (!st.is_ok()) return Status::corruption(st.message());
  return c;
}

SignedCertificate sign_certificate(const Certificate& cert, const crypto::SigningKey& root) {
  SignedCertificate sc;
  sc.cert = cert;
  sc.body = encode_certificate(cert);
  sc.sig = root.sign(sc.body);
  return sc;
}

Result<SignedCertificate> verify_certificate(ByteView body, const crypto::Signature& sig,
                                             const crypto::PublicKey& root) {
  OUTPOST_ASSIGN_OR_RETURN(Certificate cert, decode_certificate(body));
  if (!crypto::verify(root, body, sig)) {
    return Status::permission("certificate of '" + cert.name + "' (" + id_hex(cert.node_id) +
                              ") is not signed by this chain's root key");
  }
  SignedCertificate sc;
  sc.cert = std::move(cert);
  sc.body.assign(body.begin(), body.end());
  sc.sig = sig;
  return sc;
}

void write_signed_certificate(ByteWriter& w, const SignedCertificate& sc) {
  OUTPOST_CHECK(sc.body.size() <= limits::kCertificateBytesMax);
  w.u16(static_cast<std::uint16_t>(sc.body.size()));
  w.raw(sc.body);
  w.raw(sc.sig);
}

Result<SignedCertificate> read_signed_certificate(ByteReader& r) {
  std::uint16_t n = 0;
  if (!r.u16(n)) return Status::corruption("truncated certificate length");
  if (n == 0) return Status::corruption("empty certificate");
  if (n > limits::kCertificateBytesMax) return Status::corruption("certificate too large");
  SignedCertificate sc;
  sc.body.resize(n);
  if (!r.raw(sc.body) || !r.raw(sc.sig)) return Status::corruption("truncated certificate");
  OUTPOST_ASSIGN_OR_RETURN(sc.cert, decode_certificate(sc.body));
  return sc;
}

// --- roster ---------------------------------------------------------------------------------

const SignedCertificate* Roster::find(const NodeId& id) const {
  auto it = std::lower_bound(
      certificates.begin(), certificates.end(), id,
      [](const SignedCertificate& sc, const NodeId& key) { return sc.cert.node_id < key; });
  return it != certificates.end() && it->cert.node_id == id ? &*it : nullptr;
}

const SignedCertificate* Roster::find_by_name(const std::string& name) const {
  for (const auto& sc : certificates) {
    if (sc.cert.name == name) return &sc;
  }
  return nullptr;
}

const Revocation* Roster::revocation(const NodeId& id) const {
  auto it =
      std::lower_bound(revocations.begin(), revocations.end(), id,
                       [](const Revocation& r, const NodeId& key) { return r.node_id < key; });
  return it != revocations.end() && it->node_id == id ? &*it : nullptr;
}

std::optional<crypto::PublicKey> Roster::signing_key(const NodeId& id) const {
  const SignedCertificate* sc = find(id);
  if (sc == nullptr) return std::nullopt;
  return sc->cert.signing_key;
}

std::optional<crypto::PublicKey> Roster::noise_key(const NodeId& id) const {
  const SignedCertificate* sc = find(id);
  if (sc == nullptr) return std::nullopt;
  return sc->cert.noise_key;
}

bool Roster::op_allowed(const NodeId& origin, std::uint64_t seq) const {
  if (find(origin) == nullptr) return false;
  const Revocation* r = revocation(origin);
  return r == nullptr || seq <= r->after_seq;
}

Status Roster::put_certificate(SignedCertificate sc) {
  OUTPOST_RETURN_IF_ERROR(validate_certificate(sc.cert));
  if (sc.cert.network_id != network_id) {
    return Status::invalid("certificate belongs to another network");
  }
  const SignedCertificate* same_name = find_by_name(sc.cert.name);
  if (same_name != nullptr && same_name->cert.node_id != sc.cert.node_id) {
    return Status::invalid("name '" + sc.cert.name + "' is already used by node " +
                           id_hex(same_name->cert.node_id));
  }
  auto it = std::lower_bound(
      certificates.begin(), certificates.end(), sc.cert.node_id,
      [](const SignedCertificate& c, const NodeId& key) { return c.cert.node_id < key; });
  if (it != certificates.end() && it->cert.node_id == sc.cert.node_id) {
    if (it->cert.signing_key != sc.cert.signing_key || it->cert.role != sc.cert.role) {
      return Status::invalid("node " + id_hex(sc.cert.node_id) +
                             " is already enrolled with another signing key or role; a node "
                             "keeps its signing key for life (enroll a new node instead)");
    }
    *it = std::move(sc);
    return Status::ok();
  }
  if (certificates.size() >= limits::kRosterNodesMax) {
    return Status::invalid("roster is full (" + std::to_string(limits::kRosterNodesMax) +
                           " nodes)");
  }
  certificates.insert(it, std::move(sc));
  return Status::ok();
}

Status Roster::add_revocation(const Revocation& rev) {
  if (find(rev.node_id) == nullptr) {
    return Status::not_found("node " + id_hex(rev.node_id) + " is not in the roster");
  }
  auto it =
      std::lower_bound(revocations.begin(), revocations.end(), rev.node_id,
                       [](const Revocation& r, const NodeId& key) { return r.node_id < key; });
  if (it != revocations.end() && it->node_id == rev.node_id) {
    return Status::invalid("node " + id_hex(rev.node_id) + " is already revoked after seq " +
                           std::to_string(it->after_seq) + "; revocations are permanent");
  }
  revocations.insert(it, rev);
  return Status::ok();
}

Status validate_roster(const Roster& roster) {
  if (is_zero(roster.network_id)) return Status::invalid("roster: network id is zero");
  if (roster.version == 0) return Status::invalid("roster: version must start at 1");
  if (roster.certificates.size() > limits::kRosterNodesMax ||
      roster.revocations.size() > limits::kRosterNodesMax) {
    return Status::invalid("roster: more than " + std::to_string(limits::kRosterNodesMax) +
                           " nodes");
  }
  std::set<std::string> names;
  for (std::size_t i = 0; i < roster.certificates.size(); ++i) {
    const SignedCertificate& sc = roster.certificates[i];
    OUTPOST_RETURN_IF_ERROR(validate_certificate(sc.cert).with_context("roster"));
    if (sc.cert.network_id != roster.network_id) {
      return Status::invalid("roster: certificate of " + id_hex(sc.cert.node_id) +
                             " belongs to another network");
    }
    if (i > 0 && !(roster.certificates[i - 1].cert.node_id < sc.cert.node_id)) {
      return Status::invalid("roster: certificates are not in strictly ascending node id order");
    }
    if (!names.insert(sc.cert.name).second) {
      return Status::invalid("roster: name '" + sc.cert.name + "' is used twice");
    }
    if (sc.body != encode_certificate(sc.cert)) {
      return Status::invalid("roster: certificate body does not match its fields");
    }
  }
  for (std::size_t i = 0; i < roster.revocations.size(); ++i) {
    const Revocation& r = roster.revocations[i];
    if (i > 0 && !(roster.revocations[i - 1].node_id < r.node_id)) {
      return Status::invalid("roster: revocations are not in strictly ascending node id order");
    }
    if (roster.find(r.node_id) == nullptr) {
      return Status::invalid("roster: revocation of unlisted node " + id_hex(r.node_id));
    }
  }
  return Status::ok();
}

Bytes encode_roster(const Roster& roster) {
  OUTPOST_CHECK(validate_roster(roster).is_ok());
  ByteWriter w;
  w.raw(kRosterMagic);
  w.u8(kRosterFormat);
  w.raw(roster.network_id);
  w.u64(roster.version);
  w.u64(roster.issued.wall_ms);
  w.u32(roster.issued.logical);
  w.u32(static_cast<std::uint32_t>(roster.certificates.size()));
  OUTPOST_CHECK(w.bytes().size() == kRosterHeaderBytes);
  for (const auto& sc : roster.certificates) write_signed_certificate(w, sc);
  w.u32(static_cast<std::uint32_t>(roster.revocations.size()));
  for (const auto& r : roster.revocations) {
    w.raw(r.node_id);
    w.u64(r.after_seq);
  }
  // Invariant: every roster fits the bound the decoder enforces (and one link message).
  OUTPOST_CHECK(w.bytes().size() <= limits::kRosterBytesMax);
  return w.take();
}

Result<Roster> decode_roster(ByteView bytes) {
  if (bytes.size() > limits::kRosterBytesMax) return Status::corruption("roster too large");
  ByteReader r(bytes);
  std::array<std::uint8_t, 4> magic{};
  std::uint8_t format = 0;
  Roster roster;
  if (!r.raw(magic) || magic != kRosterMagic) return Status::corruption("not a roster (bad magic)");
  if (!r.u8(format)) return Status::corruption("truncated roster");
  if (format != kRosterFormat) {
    return Status::unsupported("roster format " + std::to_string(format) + " is not supported");
  }
  std::uint32_t ncerts = 0, nrevs = 0;
  if (!r.raw(roster.network_id) || !r.u64(roster.version) || !r.u64(roster.issued.wall_ms) ||
      !r.u32(roster.issued.logical) || !r.u32(ncerts)) {
    return Status::corruption("truncated roster header");
  }
  if (ncerts > limits::kRosterNodesMax) return Status::corruption("too many certificates");
  roster.certificates.reserve(ncerts);
  for (std::uint32_t i = 0; i < ncerts; ++i) {
    auto sc = read_signed_certificate(r);
    if (!sc.is_ok()) return sc.status().with_context("roster certificate " + std::to_string(i));
    roster.certificates.push_back(std::move(sc).value());
  }
  if (!r.u32(nrevs)) return Status::corruption("truncated roster");
  if (nrevs > limits::kRosterNodesMax) return Status::corruption("too many revocations");
  roster.revocations.reserve(nrevs);
  for (std::uint32_t i = 0; i < nrevs; ++i) {
    Revocation rev;
    if (!r.raw(rev.node_id) || !r.u64(rev.after_seq)) {
      return Status::corruption("truncated revocation");
    }
    roster.revocations.push_back(rev);
  }
  if (!r.at_end()) return Status::corruption("trailing bytes after roster");
  Status st = validate_roster(roster);
  if (!st.is_ok()) return Status::corruption(st.message());
  return roster;
}

SignedRoster sign_roster(const Roster& roster, const crypto::SigningKey& root) {
  SignedRoster sr;
  sr.roster = roster;
  sr.body = encode_roster(roster);
  sr.sig = root.sign(sr.body);
  return sr;
}

Result<SignedRoster> verify_roster(ByteView body, ByteView sig, const crypto::PublicKey& root,
                                   const NetworkId& network, bool check_certificate_signatures) {
  if (sig.size() != crypto::Signature{}.size()) {
    return Status::corruption("roster signature must be 64 bytes");
  }
  if (body.size() > limits::kRosterBytesMax) return Status::corruption("roster too large");
  const crypto::Signature s = to_signature(sig);
  if (!crypto::verify(root, body, s)) {
    return Status::permission("roster is not signed by this chain's root key");
  }
  OUTPOST_ASSIGN_OR_RETURN(Roster roster, decode_roster(body));
  if (roster.network_id != network) {
    return Status::permission("roster belongs to network " + crypto::to_hex(roster.network_id) +
                              ", not " + crypto::to_hex(network));
  }
  if (check_certificate_signatures) {
    for (const auto& sc : roster.certificates) {
      if (!crypto::verify(root, sc.body, sc.sig)) {
        return Status::permission("roster v" + std::to_string(roster.version) +
                                  ": certificate of " + id_hex(sc.cert.node_id) +
                                  " is not signed by the root key");
      }
    }
  }
  SignedRoster sr;
  sr.roster = std::move(roster);
  sr.body.assign(body.begin(), body.end());
  sr.sig = s;
  return sr;
}

Status check_roster_successor(const Roster& current, const Roster& next) {
  if (next.network_id != current.network_id) {
    return Status::permission("roster belongs to another network");
  }
  if (next.version <= current.version) {
    return Status::refused("roster v" + std::to_string(next.version) + " is not newer than v" +
                           std::to_string(current.version));
  }
  const std::string what = "roster v" + std::to_string(next.version) + " ";
  for (const auto& sc : current.certificates) {
    const SignedCertificate* now = next.find(sc.cert.node_id);
    if (now == nullptr) {
      return Status::permission(what + "drops node " + id_hex(sc.cert.node_id) +
                                " (nodes are revoked, never removed)");
    }
    if (now->cert.signing_key != sc.cert.signing_key || now->cert.role != sc.cert.role) {
      return Status::permission(what + "changes the signing key or role of node " +
                                id_hex(sc.cert.node_id));
    }
  }
  for (const auto& rev : current.revocations) {
    const Revocation* now = next.revocation(rev.node_id);
    if (now == nullptr || now->after_seq != rev.after_seq) {
      return Status::permission(what + "drops or changes the revocation of node " +
                                id_hex(rev.node_id) + " (revocations are permanent)");
    }
  }
  return Status::ok();
}

Status check_peer_certificate(const SignedCertificate& peer, std::uint64_t peer_roster_version,
                              const crypto::PublicKey& root, const NetworkId& network,
                              const NodeId& self, const Roster* roster, std::uint64_t now_ms) {
  const Certificate& c = peer.cert;
  const std::string who = "peer '" + c.name + "' (" + id_hex(c.node_id) + ")";
  if (!crypto::verify(root, peer.body, peer.sig)) {
    return Status::permission(who + ": certificate is not signed by this chain's root key");
  }
  if (c.network_id != network) {
    return Status::permission(who + ": certificate belongs to network " +
                              crypto::to_hex(c.network_id));
  }
  if (now_ms < c.valid_from_ms) {
    return Status::permission(who + ": certificate is not valid before " +
                              std::to_string(c.valid_from_ms) + " ms (now " +
                              std::to_string(now_ms) + ")");
  }
  if (now_ms >= c.valid_until_ms) {
    return Status::permission(who + ": certificate expired at " + std::to_string(c.valid_until_ms) +
                              " ms (now " + std::to_string(now_ms) + ")");
  }
  if (c.node_id == self) return Status::permission(who + ": the peer is this node itself");
  if (roster == nullptr) return Status::ok();
  if (const Revocation* rev = roster->revocation(c.node_id)) {
    return Status::permission(who + ": node is revoked (after seq " +
                              std::to_string(rev->after_seq) + ", roster v" +
                              std::to_string(roster->version) + ")");
  }
  if (const SignedCertificate* listed = roster->find(c.node_id)) {
    if (listed->body != peer.body || listed->sig != peer.sig) {
      return Status::permission(who + ": certificate differs from the one in roster v" +
                                std::to_string(roster->version) + " (superseded)");
    }
    return Status::ok();
  }
  if (peer_roster_version > roster->version) return Status::ok();
  return Status::permission(who + ": node is not in roster v" + std::to_string(roster->version) +
                            " (peer has v" + std::to_string(peer_roster_version) + ")");
}

std::string key_fingerprint(const crypto::PublicKey& key) {
  crypto::Hash32 h = crypto::sha256(key);
  return crypto::to_hex(ByteView(h.data(), 8));
}

}  // namespace outpost::sync
