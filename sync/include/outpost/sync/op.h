// Ops: the only way Outpost state changes. Each op is created and signed by exactly one node (its
// origin), numbered seq = 1, 2, 3, ... per origin and chained by `prev` (the hash of the origin's
// previous op). The canonical signed encoding is specified in docs/op-format.md and pinned by
// golden vectors in tests/unit/sync_op_test.cc. Pure functions and value types; thread-compatible.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "outpost/base/status.h"
#include "outpost/crypto/crypto.h"
#include "outpost/sync/bytes.h"
#include "outpost/sync/hlc.h"

namespace outpost::sync {

using NodeId = std::array<std::uint8_t, 16>;
using MemberId = std::array<std::uint8_t, 16>;
using Hash32 = crypto::Hash32;

inline constexpr std::uint8_t kOpVersion = 1;
inline constexpr std::array<std::uint8_t, 4> kOpMagic = {'O', 'P', 'S', 'T'};
// Size of the fixed-width part of the encoding (everything before request_id).
inline constexpr std::size_t kOpFixedBytes = 148;

enum class OpKind : std::uint8_t {
  kNone = 0,     // only as Op::ref_kind of a non-reverse op
  kEnroll = 1,   // new member with profile fields
  kProfile = 2,  // profile field updates (LWW)
  kEarn = 3,     // purchase: credits points at origin, adds spend and a visit
  kRedeem = 4,   // debits points at origin
  kTopup = 5,    // credits wallet at origin
  kSpend = 6,    // debits wallet at origin
  kReverse = 7,  // undoes one earlier op of this origin (ref)
  kMove = 8,     // hands `amount` rights of `account` from origin to `target`
  kPinFailure = 9,  // a wrong wallet PIN was given for `member` at origin (PIN lockout)
};
inline constexpr std::uint8_t kOpKindMax = 9;

enum class Account : std::uint8_t { kNone = 0, kPoints = 1, kWallet = 2 };

enum class Field : std::uint8_t {
  kCard = 1,
  kName = 2,
  kPhone = 3,
  kBirthday = 4,
  kHomeStore = 5,
  kPinHash = 6,
  kStatus = 7,
  kPinReset = 8,  // PIN failures before this register's HLC no longer count (set on a right PIN)
};
inline constexpr std::uint8_t kFieldMax = 8;

const char* kind_name(OpKind kind);
const char* account_name(Account account);
const char* field_name(Field field);
// Parses the names above; returns false for an unknown name.
bool parse_kind(const std::string& name, OpKind& out);
bool parse_field(const std::string& name, Field& out);

struct FieldValue {
  Field field = Field::kName;
  std::string value;
  bool operator==(const FieldValue&) const = default;
};

struct Op {
  OpKind kind = OpKind::kEnroll;
  NodeId origin{};
  std::uint64_t seq = 0;
  Hash32 prev{};  // all zero for seq 1 (genesis)
  Hlc hlc;
  MemberId member{};
  Account account = Account::kNone;
  std::uint64_t amount = 0;       // rights credited, debited or moved
  std::uint64_t spend_minor = 0;  // earn: purchase amount counted toward tier spend
  NodeId target{};                // move: the node receiving rights
  NodeId ref_origin{};            // reverse: the op being reversed
  std::uint64_t ref_seq = 0;
  OpKind ref_kind = OpKind::kNone;  // reverse: kind of the reversed op
  std::string request_id;             // POS idempotency key
  std::string receipt;                // POS receipt reference
  std::vector<FieldValue> fields;     // enroll / profile
  bool operator==(const Op&) const = default;
};

// An op with its signature and hash (SHA-256 over signed bytes || sig).
struct SignedOp {
  Op op;
  Bytes signed_bytes;
  crypto::Signature sig{};
  Hash32 hash{};
};

// Returns the canonical signed bytes of `op` (docs/op-format.md). `op` must satisfy validate().
Bytes encode_op(const Op& op);
// Parses canonical signed bytes. Fails (kCorruption / kUnsupported) on a wrong magic, unknown
// version or kind, oversize field, trailing bytes, or a non-canonical value.
Result<Op> decode_op(ByteView bytes);
// Checks the per-kind shape rules (amount ranges, required fields, bounded strings).
Status validate_op(const Op& op);

Hash32 op_hash(ByteView signed_bytes, const crypto::Signature& sig);
// Encodes, signs and hashes `op` with the origin's key.
SignedOp sign_op(const Op& op, const crypto::SigningKey& key);
// Checks the signature under `origin_key` and that `hash` matches. Does not check the chain.
Status verify_op(const SignedOp& op, const crypto::PublicKey& origin_key);
// Builds a SignedOp from stored parts, decoding the bytes and recomputing the hash.
Result<SignedOp> load_signed_op(ByteView signed_bytes, ByteView sig);

// The wire/file framing of a signed op: u32 length, signed bytes, 64-byte signature.
void write_signed_op(ByteWriter& w, const SignedOp& op);
Result<SignedOp> read_signed_op(ByteReader& r);

std::string id_hex(const NodeId& id);
Result<NodeId> parse_id(const std::string& hex);
// "ORIGINHEX:SEQ", the printable name of an op.
std::string op_ref_string(const NodeId& origin, std::uint64_t seq);
bool parse_op_ref(const std::string& text, NodeId& origin, std::uint64_t& seq);

}  // namespace outpost::sync
