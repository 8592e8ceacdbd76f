#include "outpost/sync/op.h"

#include <algorithm>
#include <set>

#include "outpost/base/limits.h"

namespace outpost::sync {

namespace {

bool is_zero(std::span<const std::uint8_t> b) {
  return std::all_of(b.begin(), b.end(), [](std::uint8_t x) { return x == 0; });
}

bool known_kind(std::uint8_t k) { return k >= 1 && k <= kOpKindMax; }

bool known_field(std::uint8_t f) { return f >= 1 && f <= kFieldMax; }

Account account_of(OpKind kind) {
  switch (kind) {
    case OpKind::kEarn:
    case OpKind::kRedeem:
      return Account::kPoints;
    case OpKind::kTopup:
    case OpKind::kSpend:
      return Account::kWallet;
    default:
      return Account::kNone;
  }
}

}  // namespace

const char* kind_name(OpKind kind) {
  switch (kind) {
    case OpKind::kNone: return "none";
    case OpKind::kEnroll: return "enroll";
    case OpKind::kProfile: return "profile";
    case OpKind::kEarn: return "earn";
    case OpKind::kRedeem: return "redeem";
    case OpKind::kTopup: return "topup";
    case OpKind::kSpend: return "spend";
    case OpKind::kReverse: return "reverse";
    case OpKind::kMove: return "move";
    case OpKind::kPinFailure: return "pin_failure";
  }
  return "unknown";
}

const char* account_name(Account account) {
  switch (account) {
    case Account::kNone: return "none";
    case Account::kPoints: return "points";
    case Account::kWallet: return "wallet";
  }
  return "unknown";
}

const char* field_name(Field field) {
  switch (field) {
    case Field::kCard: return "card";
    case Field::kName: return "name";
    case Field::kPhone: return "phone";
    case Field::kBirthday: return "birthday";
    case Field::kHomeStore: return "home_store";
    case Field::kPinHash: return "pin_hash";
    case Field::kStatus: return "status";
    case Field::kPinReset: return "pin_reset";
  }
  return "unknown";
}

bool parse_kind(const std::string& name, OpKind& out) {
  for (std::uint8_t k = 1; k <= kOpKindMax; ++k) {
    if (name == kind_name(static_cast<OpKind>(k))) {
      out = static_cast<OpKind>(k);
      return true;
    }
  }
  return false;
}

bool parse_field(const std::string& name, Field& out) {
  for (std::uint8_t f = 1; f <= kFieldMax; ++f) {
    if (name == field_name(static_cast<Field>(f))) {
      out = static_cast<Field>(f);
      return true;
    }
  }
  return false;
}

Status validate_op(const Op& op) {
  auto bad = [&](const std::string& why) {
    return Status::invalid(std::string(kind_name(op.kind)) + " op: " + why);
  };
  if (!known_kind(static_cast<std::uint8_t>(op.kind))) return Status::invalid("unknown op kind");
  if (is_zero(op.origin)) return bad("origin is zero");
  if (op.seq == 0) return bad("seq must start at 1");
  if (op.seq == 1 && !is_zero(op.prev)) return bad("genesis op must have a zero prev");
  if (op.request_id.size() > limits::kRequestIdBytesMax) return bad("request_id too long");
  if (op.receipt.size() > limits::kReceiptBytesMax) return bad("receipt too long");
  if (op.amount > limits::kAmountMax) return bad("amount above the maximum");
  if (op.spend_minor > limits::kAmountMax) return bad("spend above the maximum");

  const bool has_fields = op.kind == OpKind::kEnroll || op.kind == OpKind::kProfile;
  if (!has_fields && !op.fields.empty()) return bad("fields are only allowed on enroll/profile");
  if (op.kind != OpKind::kMove && !is_zero(op.target)) return bad("target set on a non-move op");
  if (op.kind != OpKind::kReverse &&
      (!is_zero(op.ref_origin) || op.ref_seq != 0 || op.ref_kind != OpKind::kNone)) {
    return bad("ref set on a non-reverse op");
  }
  if (is_zero(op.member)) return bad("member is zero");
  if (op.kind != OpKind::kEarn && op.kind != OpKind::kReverse && op.spend_minor != 0) {
    return bad("spend_minor only on earn/reverse");
  }

  switch (op.kind) {
    case OpKind::kEnroll:
    case OpKind::kProfile: {
      if (op.account != Account::kNone || op.amount != 0) return bad("carries no amount");
      if (op.fields.empty()) return bad("needs at least one field");
      if (op.fields.size() > limits::kFieldsPerOpMax) return bad("too many fields");
      std::set<Field> seen;
      for (const auto& f : op.fields) {
        if (!known_field(static_cast<std::uint8_t>(f.field))) return bad("unknown field");
        if (!seen.insert(f.field).second) return bad("duplicate field");
        if (f.value.size() > limits::kFieldValueBytesMax) return bad("field value too long");
      }
      if (op.kind == OpKind::kEnroll && !seen.count(Field::kCard)) return bad("needs a card");
      break;
    }
    case OpKind::kEarn:
      if (op.account != Account::kPoints) return bad("account must be points");
      if (op.spend_minor == 0) return bad("purchase amount must be positive");
      break;
    case OpKind::kRedeem:
    case OpKind::kTopup:
    case OpKind::kSpend:
      if (op.account != account_of(op.kind)) return bad("wrong account");
      if (op.amount == 0) return bad("amount must be positive");
      break;
    case OpKind::kReverse: {
      Account want = account_of(op.ref_kind);
      if (want == Account::kNone) return bad("can only reverse earn, redeem, topup or spend");
      if (op.account != want) return bad("account does not match the reversed kind");
      if (op.ref_origin != op.origin) return bad("only the origin may reverse its op");
      if (op.ref_seq == 0 || op.ref_seq >= op.seq) return bad("ref must name an earlier op");
      if (op.ref_kind != OpKind::kEarn && op.spend_minor != 0) return bad("spend only for earn");
      break;
    }
    case OpKind::kMove:
      if (op.account != Account::kPoints && op.account != Account::kWallet) {
        return bad("account must be points or wallet");
      }
      if (op.amount == 0) return bad("amount must be positive");
      if (is_zero(op.target) || op.target == op.origin) return bad("bad target node");
      break;
    case OpKind::kPinFailure:
      if (op.account != Account::kNone || op.amount != 0) return bad("carries no amount");
      break;
    case OpKind::kNone:
      return bad("kind none");
  }
  return Status::ok();
}

Bytes encode_op(const Op& op) {
  OUTPOST_CHECK(validate_op(op).is_ok());
  ByteWriter w;
  w.raw(kOpMagic);
  w.u8(kOpVersion);
  w.u8(static_cast<std::uint8_t>(op.kind));
  w.raw(op.origin);
  w.u64(op.seq);
  w.raw(op.prev);
  w.u64(op.hlc.wall_ms);
  w.u32(op.hlc.logical);
  w.raw(op.member);
  w.u8(static_cast<std::uint8_t>(op.account));
  w.u64(op.amount);
  w.u64(op.spend_minor);
  w.raw(op.target);
  w.raw(op.ref_origin);
  w.u64(op.ref_seq);
  w.u8(static_cast<std::uint8_t>(op.ref_kind));
  OUTPOST_CHECK(w.bytes().size() == kOpFixedBytes);
  w.str16(op.request_id);
  w.str16(op.receipt);
  w.u8(static_cast<std::uint8_t>(op.fields.size()));
  for (const auto& f : op.fields) {
    w.u8(static_cast<std::uint8_t>(f.field));
    w.str16(f.value);
  }
  return w.take();
}

Result<Op> decode_op(ByteView bytes) {
  if (bytes.size() > limits::kOpSignedBytesMax) return Status::corruption("op encoding too large");
  ByteReader r(bytes);
  std::array<std::uint8_t, 4> magic{};
  std::uint8_t version = 0, kind = 0, account = 0, ref_kind = 0, nfields = 0;
  Op op;
  if (!r.raw(magic) || magic != kOpMagic) return Status::corruption("not an op (bad magic)");
  if (!r.u8(version)) return Status::corruption("truncated op");
  if (version != kOpVersion) {
    return Status::unsupported("op version " + std::to_string(version) + " is not supported");
  }
  bool ok = r.u8(kind) && r.raw(op.origin) && r.u64(op.seq) && r.raw(op.prev) &&
            r.u64(op.hlc.wall_ms) && r.u32(op.hlc.logical) && r.raw(op.member) &&
            r.u8(account) && r.u64(op.amount) && r.u64(op.spend_minor) && r.raw(op.target) &&
            r.raw(op.ref_origin) && r.u64(op.ref_seq) && r.u8(ref_kind) &&
            r.str16(op.request_id, limits::kRequestIdBytesMax) &&
            r.str16(op.receipt, limits::kReceiptBytesMax) && r.u8(nfields);
  if (!ok) return Status::corruption("truncated or oversize op");
  if (!known_kind(kind)) return Status::corruption("unknown op kind " + std::to_string(kind));
  if (account > 2) return Status::corruption("unknown account " + std::to_string(account));
  if (ref_kind > kOpKindMax) return Status::corruption("unknown ref kind");
  if (nfields > limits::kFieldsPerOpMax) return Status::corruption("too many fields");
  op.kind = static_cast<OpKind>(kind);
  op.account = static_cast<Account>(account);
  op.ref_kind = static_cast<OpKind>(ref_kind);
  for (std::uint8_t i = 0; i < nfields; ++i) {
    std::uint8_t fid = 0;
    FieldValue fv;
    if (!r.u8(fid) || !r.str16(fv.value, limits::kFieldValueBytesMax)) {
      return Status::corruption("truncated field");
    }
    if (!known_field(fid)) return Status::corruption("unknown field " + std::to_string(fid));
    fv.field = static_cast<Field>(fid);
    op.fields.push_back(std::move(fv));
  }
  if (!r.at_end()) return Status::corruption("trailing bytes after op");
  Status st = validate_op(op);
  if (!st.is_ok()) return Status::corruption(st.message());
  return op;
}

Hash32 op_hash(ByteView signed_bytes, const crypto::Signature& sig) {
  return crypto::sha256({signed_bytes, ByteView(sig)});
}

SignedOp sign_op(const Op& op, const crypto::SigningKey& key) {
  SignedOp s;
  s.op = op;
  s.signed_bytes = encode_op(op);
  s.sig = key.sign(s.signed_bytes);
  s.hash = op_hash(s.signed_bytes, s.sig);
  return s;
}

Status verify_op(const SignedOp& op, const crypto::PublicKey& origin_key) {
  if (!crypto::verify(origin_key, op.signed_bytes, op.sig)) {
    return Status::corruption("bad signature on op " + op_ref_string(op.op.origin, op.op.seq));
  }
  Hash32 h = op_hash(op.signed_bytes, op.sig);
  if (!crypto::ct_equal(h, op.hash)) {
    return Status::corruption("hash mismatch on op " + op_ref_string(op.op.origin, op.op.seq));
  }
  return Status::ok();
}

Result<SignedOp> load_signed_op(ByteView signed_bytes, ByteView sig) {
  if (sig.size() != 64) return Status::corruption("signature must be 64 bytes");
  OUTPOST_ASSIGN_OR_RETURN(Op op, decode_op(signed_bytes));
  SignedOp s;
  s.op = std::move(op);
  s.signed_bytes.assign(signed_bytes.begin(), signed_bytes.end());
  std::copy(sig.begin(), sig.end(), s.sig.begin());
  s.hash = op_hash(s.signed_bytes, s.sig);
  return s;
}

void write_signed_op(ByteWriter& w, const SignedOp& op) {
  w.bytes32(op.signed_bytes);
  w.raw(op.sig);
}

Result<SignedOp> read_signed_op(ByteReader& r) {
  Bytes body;
  crypto::Signature sig{};
  if (!r.bytes32(body, limits::kOpSignedBytesMax) || !r.raw(sig)) {
    return Status::corruption("truncated or oversize signed op");
  }
  return load_signed_op(body, sig);
}

std::string id_hex(const NodeId& id) { return crypto::to_hex(id); }

Result<NodeId> parse_id(const std::string& hex) {
  if (hex.size() != 32) return Status::invalid("id must be 32 hex digits");
  auto b = crypto::from_hex(hex);
  if (!b.is_ok()) return Status::invalid("id must be 32 hex digits");
  NodeId id{};
  std::copy(b->begin(), b->end(), id.begin());
  return id;
}

std::string op_ref_string(const NodeId& origin, std::uint64_t seq) {
  return id_hex(origin) + ":" + std::to_string(seq);
}

bool parse_op_ref(const std::string& text, NodeId& origin, std::uint64_t& seq) {
  auto colon = text.find(':');
  if (colon != 32) return false;
  auto id = parse_id(text.substr(0, 32));
  if (!id.is_ok()) return false;
  std::string digits = text.substr(33);
  if (digits.empty() || digits.size() > 19) return false;
  std::uint64_t v = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<std::uint64_t>(c - '0');
  }
  if (v == 0) return false;
  origin = *id;
  seq = v;
  return true;
}

}  // namespace outpost::sync
