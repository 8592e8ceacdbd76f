// Canonical op encoding (sync/src/op.cc, docs/op-format.md): golden byte vectors for every op
// kind, a golden Ed25519 signature and SHA-256 op hash, decode round trips and every rejection
// path, signature verification under tampering, the signed-op framing, and id / op-ref parsing.
//
// The golden vectors below are written field by field in the order of the byte table in
// docs/op-format.md, each row commented with its field. They were produced by an independent
// encoder written from that page (not from op.cc) and the signature by an independent Ed25519
// implementation; if one of these tests fails, the encoding changed and every stored log and
// every deployed verifier with it.
#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "outpost/base/limits.h"
#include "outpost/base/status.h"
#include "outpost/crypto/crypto.h"
#include "outpost/sync/bytes.h"
#include "outpost/sync/op.h"

namespace outpost::sync {
namespace {

// ---------------------------------------------------------------------------------------------
// Fixed inputs. Each id is a run of consecutive bytes so a misplaced or reversed field shows up
// in a hex diff at a glance.

template <std::size_t N>
std::array<std::uint8_t, N> run_from(std::uint8_t first) {
  std::array<std::uint8_t, N> a{};
  for (std::size_t i = 0; i < N; ++i) a[i] = static_cast<std::uint8_t>(first + i);
  return a;
}

const NodeId kOrigin = run_from<16>(0xa0);        // a0 a1 .. af
const MemberId kMember = run_from<16>(0xb0);      // b0 b1 .. bf
const NodeId kTarget = run_from<16>(0xc0);        // c0 c1 .. cf
const Hash32 kPrev = run_from<32>(0xd0);          // d0 d1 .. ef
constexpr std::uint64_t kWallMs = 1709208000123;  // 2024-02-29T12:00:00.123Z
constexpr std::uint32_t kLogical = 0x0304;
constexpr std::uint64_t kSeq = 258;

Bytes unhex(const std::string& hex) {
  auto b = crypto::from_hex(hex);
  EXPECT_TRUE(b.is_ok()) << "bad hex literal in test: " << hex;
  return b.is_ok() ? *b : Bytes{};
}

std::string hex(ByteView b) { return crypto::to_hex(b); }

Op base_op(OpKind kind) {
  Op op;
  op.kind = kind;
  op.origin = kOrigin;
  op.seq = kSeq;
  op.prev = kPrev;
  op.hlc = Hlc{kWallMs, kLogical};
  op.member = kMember;
  return op;
}

Op enroll_op() {
  Op op = base_op(OpKind::kEnroll);
  op.seq = 1;
  op.prev = Hash32{};  // genesis
  op.request_id = "pos-1:0001";
  op.fields = {{Field::kCard, "6280001234567890"},
               {Field::kName, "Ada Lovelace"},
               {Field::kPhone, "+441234567890"}};
  return op;
}

Op profile_op() {
  Op op = base_op(OpKind::kProfile);
  op.request_id = "pos-1:0002";
  op.fields = {{Field::kName, "Ada King"}, {Field::kStatus, "active"}};
  return op;
}

Op earn_op() {
  Op op = base_op(OpKind::kEarn);
  op.account = Account::kPoints;
  op.amount = 1234;
  op.spend_minor = 123456;
  op.request_id = "pos-7:00042";
  op.receipt = "R-2024-0001";
  return op;
}

Op redeem_op() {
  Op op = base_op(OpKind::kRedeem);
  op.account = Account::kPoints;
  op.amount = 500;
  op.request_id = "pos-7:00043";
  op.receipt = "R-2024-0002";
  return op;
}

Op topup_op() {
  Op op = base_op(OpKind::kTopup);
  op.account = Account::kWallet;
  op.amount = 10000;
  op.request_id = "pos-7:00044";
  return op;
}

Op spend_op() {
  Op op = base_op(OpKind::kSpend);
  op.account = Account::kWallet;
  op.amount = 2550;
  op.request_id = "pos-7:00045";
  op.receipt = "R-2024-0003";
  return op;
}

Op reverse_op() {
  Op op = base_op(OpKind::kReverse);
  op.account = Account::kPoints;
  op.amount = 1234;
  op.spend_minor = 123456;
  op.ref_origin = kOrigin;
  op.ref_seq = 257;
  op.ref_kind = OpKind::kEarn;
  op.request_id = "pos-7:00046";
  op.receipt = "R-2024-0001";
  return op;
}

Op move_op() {
  Op op = base_op(OpKind::kMove);
  op.account = Account::kWallet;
  op.amount = 5000;
  op.target = kTarget;
  return op;
}

Op pin_failure_op() {
  Op op = base_op(OpKind::kPinFailure);
  op.request_id = "pin-failure-1";
  return op;
}

// A right PIN restarts the failure count: a profile op with the pin_reset field.
Op pin_reset_op() {
  Op op = base_op(OpKind::kProfile);
  op.request_id = "pin-reset-1";
  op.fields = {{Field::kPinReset, "a0a1"}};
  return op;
}

// ---------------------------------------------------------------------------------------------
// Golden vectors, one row per field of the byte table in docs/op-format.md.
// clang-format off

// 213 bytes. Also the genesis case: seq 1, prev all zero.
constexpr const char* kEnrollHex =
    "4f505354"                          // magic "OPST"
    "01"                                // version 1
    "01"                                // kind 1 = enroll
    "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf"  // origin
    "0100000000000000"                  // seq 1
    "0000000000000000000000000000000000000000000000000000000000000000"  // prev (genesis)
    "7b56bcf48d010000"                  // hlc.wall_ms 1709208000123
    "04030000"                          // hlc.logical 772
    "b0b1b2b3b4b5b6b7b8b9babbbcbdbebf"  // member
    "00"                                // account 0 = none
    "0000000000000000"                  // amount 0
    "0000000000000000"                  // spend_minor 0
    "00000000000000000000000000000000"  // target (none)
    "00000000000000000000000000000000"  // ref_origin (none)
    "0000000000000000"                  // ref_seq 0
    "00"                                // ref_kind 0 = none
    "0a00" "706f732d313a30303031"       // request_id "pos-1:0001"
    "0000"                              // receipt ""
    "03"                                // field count 3
    "01" "1000" "36323830303031323334353637383930"  // card "6280001234567890"
    "02" "0c00" "416461204c6f76656c616365"          // name "Ada Lovelace"
    "03" "0d00" "2b343431323334353637383930";       // phone "+441234567890"

// 183 bytes.
constexpr const char* kProfileHex =
    "4f505354"                          // magic "OPST"
    "01"                                // version 1
    "02"                                // kind 2 = profile
    "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf"  // origin
    "0201000000000000"                  // seq 258
    "d0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebecedeeef"  // prev
    "7b56bcf48d010000"                  // hlc.wall_ms 1709208000123
    "04030000"                          // hlc.logical 772
    "b0b1b2b3b4b5b6b7b8b9babbbcbdbebf"  // member
    "00"                                // account 0 = none
    "0000000000000000"                  // amount 0
    "0000000000000000"                  // spend_minor 0
    "00000000000000000000000000000000"  // target (none)
    "00000000000000000000000000000000"  // ref_origin (none)
    "0000000000000000"                  // ref_seq 0
    "00"                                // ref_kind 0 = none
    "0a00" "706f732d313a30303032"       // request_id "pos-1:0002"
    "0000"                              // receipt ""
    "02"                                // field count 2
    "02" "0800" "416461204b696e67"      // name "Ada King"
    "07" "0600" "616374697665";         // status "active"

// 175 bytes. The worked example of docs/op-format.md.
constexpr const char* kEarnHex =
    "4f505354"                          // magic "OPST"
    "01"                                // version 1
    "03"                                // kind 3 = earn
    "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf"  // origin
    "0201000000000000"                  // seq 258
    "d0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebecedeeef"  // prev
    "7b56bcf48d010000"                  // hlc.wall_ms 1709208000123
    "04030000"                          // hlc.logical 772
    "b0b1b2b3b4b5b6b7b8b9babbbcbdbebf"  // member
    "01"                                // account 1 = points
    "d204000000000000"                  // amount 1234
    "40e2010000000000"                  // spend_minor 123456
    "00000000000000000000000000000000"  // target (none)
    "00000000000000000000000000000000"  // ref_origin (none)
    "0000000000000000"                  // ref_seq 0
    "00"                                // ref_kind 0 = none
    "0b00" "706f732d373a3030303432"     // request_id "pos-7:00042"
    "0b00" "522d323032342d30303031"     // receipt "R-2024-0001"
    "00";                               // field count 0

// 175 bytes.
constexpr const char* kRedeemHex =
    "4f505354"                          // magic "OPST"
    "01"                                // version 1
    "04"                                // kind 4 = redeem
    "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf"  // origin
    "0201000000000000"                  // seq 258
    "d0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebecedeeef"  // prev
    "7b56bcf48d010000"                  // hlc.wall_ms 1709208000123
    "04030000"                          // hlc.logical 772
    "b0b1b2b3b4b5b6b7b8b9babbbcbdbebf"  // member
    "01"                                // account 1 = points
    "f401000000000000"                  // amount 500
    "0000000000000000"                  // spend_minor 0
    "00000000000000000000000000000000"  // target (none)
    "00000000000000000000000000000000"  // ref_origin (none)
    "0000000000000000"                  // ref_seq 0
    "00"                                // ref_kind 0 = none
    "0b00" "706f732d373a3030303433"     // request_id "pos-7:00043"
    "0b00" "522d323032342d30303032"     // receipt "R-2024-0002"
    "00";                               // field count 0

// 164 bytes.
constexpr const char* kTopupHex =
    "4f505354"                          // magic "OPST"
    "01"                                // version 1
    "05"                                // kind 5 = topup
    "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf"  // origin
    "0201000000000000"                  // seq 258
    "d0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebecedeeef"  // prev
    "7b56bcf48d010000"                  // hlc.wall_ms 1709208000123
    "04030000"                          // hlc.logical 772
    "b0b1b2b3b4b5b6b7b8b9babbbcbdbebf"  // member
    "02"                                // account 2 = wallet
    "1027000000000000"                  // amount 10000
    "0000000000000000"                  // spend_minor 0
    "00000000000000000000000000000000"  // target (none)
    "00000000000000000000000000000000"  // ref_origin (none)
    "0000000000000000"                  // ref_seq 0
    "00"                                // ref_kind 0 = none
    "0b00" "706f732d373a3030303434"     // request_id "pos-7:00044"
    "0000"                              // receipt ""
    "00";                               // field count 0

// 175 bytes.
constexpr const char* kSpendHex =
    "4f505354"                          // magic "OPST"
    "01"                                // version 1
    "06"                                // kind 6 = spend
    "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf"  // origin
    "0201000000000000"                  // seq 258
    "d0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebecedeeef"  // prev
    "7b56bcf48d010000"                  // hlc.wall_ms 1709208000123
    "04030000"                          // hlc.logical 772
    "b0b1b2b3b4b5b6b7b8b9babbbcbdbebf"  // member
    "02"                                // account 2 = wallet
    "f609000000000000"                  // amount 2550
    "0000000000000000"                  // spend_minor 0
    "00000000000000000000000000000000"  // target (none)
    "00000000000000000000000000000000"  // ref_origin (none)
    "0000000000000000"                  // ref_seq 0
    "00"                                // ref_kind 0 = none
    "0b00" "706f732d373a3030303435"     // request_id "pos-7:00045"
    "0b00" "522d323032342d30303033"     // receipt "R-2024-0003"
    "00";                               // field count 0

// 175 bytes. Reverses the earn at seq 257 of the same origin.
constexpr const char* kReverseHex =
    "4f505354"                          // magic "OPST"
    "01"                                // version 1
    "07"                                // kind 7 = reverse
    "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf"  // origin
    "0201000000000000"                  // seq 258
    "d0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebecedeeef"  // prev
    "7b56bcf48d010000"                  // hlc.wall_ms 1709208000123
    "04030000"                          // hlc.logical 772
    "b0b1b2b3b4b5b6b7b8b9babbbcbdbebf"  // member
    "01"                                // account 1 = points
    "d204000000000000"                  // amount 1234
    "40e2010000000000"                  // spend_minor 123456
    "00000000000000000000000000000000"  // target (none)
    "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf"  // ref_origin (= origin)
    "0101000000000000"                  // ref_seq 257
    "03"                                // ref_kind 3 = earn
    "0b00" "706f732d373a3030303436"     // request_id "pos-7:00046"
    "0b00" "522d323032342d30303031"     // receipt "R-2024-0001"
    "00";                               // field count 0

// 153 bytes: the smallest op shape (no strings, no fields).
constexpr const char* kMoveHex =
    "4f505354"                          // magic "OPST"
    "01"                                // version 1
    "08"                                // kind 8 = move
    "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf"  // origin
    "0201000000000000"                  // seq 258
    "d0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebecedeeef"  // prev
    "7b56bcf48d010000"                  // hlc.wall_ms 1709208000123
    "04030000"                          // hlc.logical 772
    "b0b1b2b3b4b5b6b7b8b9babbbcbdbebf"  // member
    "02"                                // account 2 = wallet
    "8813000000000000"                  // amount 5000
    "0000000000000000"                  // spend_minor 0
    "c0c1c2c3c4c5c6c7c8c9cacbcccdcecf"  // target
    "00000000000000000000000000000000"  // ref_origin (none)
    "0000000000000000"                  // ref_seq 0
    "00"                                // ref_kind 0 = none
    "0000"                              // request_id ""
    "0000"                              // receipt ""
    "00";                               // field count 0

// 166 bytes: a wrong PIN (kind 9), no account, amount or fields.
constexpr const char* kPinFailureHex =
    "4f505354"                          // magic "OPST"
    "01"                                // version 1
    "09"                                // kind 9 = pin_failure
    "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf"  // origin
    "0201000000000000"                  // seq 258
    "d0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebecedeeef"  // prev
    "7b56bcf48d010000"                  // hlc.wall_ms 1709208000123
    "04030000"                          // hlc.logical 772
    "b0b1b2b3b4b5b6b7b8b9babbbcbdbebf"  // member
    "00"                                // account 0 = none
    "0000000000000000"                  // amount 0
    "0000000000000000"                  // spend_minor 0
    "00000000000000000000000000000000"  // target (none)
    "00000000000000000000000000000000"  // ref_origin (none)
    "0000000000000000"                  // ref_seq 0
    "00"                                // ref_kind 0 = none
    "0d00" "70696e2d6661696c7572652d31" // request_id "pin-failure-1"
    "0000"                              // receipt ""
    "00";                               // field count 0

// 171 bytes: a profile op carrying field 8 = pin_reset.
constexpr const char* kPinResetHex =
    "4f505354"                          // magic "OPST"
    "01"                                // version 1
    "02"                                // kind 2 = profile
    "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf"  // origin
    "0201000000000000"                  // seq 258
    "d0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebecedeeef"  // prev
    "7b56bcf48d010000"                  // hlc.wall_ms 1709208000123
    "04030000"                          // hlc.logical 772
    "b0b1b2b3b4b5b6b7b8b9babbbcbdbebf"  // member
    "00"                                // account 0 = none
    "0000000000000000"                  // amount 0
    "0000000000000000"                  // spend_minor 0
    "00000000000000000000000000000000"  // target (none)
    "00000000000000000000000000000000"  // ref_origin (none)
    "0000000000000000"                  // ref_seq 0
    "00"                                // ref_kind 0 = none
    "0b00" "70696e2d72657365742d31"     // request_id "pin-reset-1"
    "0000"                              // receipt ""
    "01"                                // field count 1
    "08" "0400" "61306131";             // pin_reset "a0a1"

// Ed25519 key from the seed 00 01 02 .. 1f, and its signature over kEarnHex. Ed25519 (RFC 8032)
// is deterministic, so the same key and bytes always give this signature.
constexpr const char* kSeedHex = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
constexpr const char* kPublicKeyHex =
    "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8";
constexpr const char* kEarnSigHex =
    "d95025a662d8ec162cb7b241b97092b1ef4bdff18ffc106efaf94b9970cae47d"
    "827d9e9c3647af5344edd42986ae49d92eeb9ce22407afea085d687e5f71a602";
// SHA-256(kEarnHex || kEarnSigHex).
constexpr const char* kEarnHashHex =
    "fcf5f24bf7c3dec127cad7c9f7142d17162af4bbabb4960de9a4ccbed1475da6";

// clang-format on

// Byte offsets of the fixed part (docs/op-format.md).
constexpr std::size_t kOffVersion = 4;
constexpr std::size_t kOffKind = 5;
constexpr std::size_t kOffOrigin = 6;
constexpr std::size_t kOffSeq = 22;
constexpr std::size_t kOffPrev = 30;
constexpr std::size_t kOffMember = 74;
constexpr std::size_t kOffAccount = 90;
constexpr std::size_t kOffAmount = 91;
constexpr std::size_t kOffSpend = 99;
constexpr std::size_t kOffTarget = 107;
constexpr std::size_t kOffRefOrigin = 123;
constexpr std::size_t kOffRefSeq = 139;
constexpr std::size_t kOffRefKind = 147;
constexpr std::size_t kOffRequestId = 148;

struct Golden {
  const char* name;
  Op op;
  const char* hex;
  std::size_t size;
};

std::vector<Golden> goldens() {
  return {{"enroll", enroll_op(), kEnrollHex, 213},    {"profile", profile_op(), kProfileHex, 183},
          {"earn", earn_op(), kEarnHex, 175},          {"redeem", redeem_op(), kRedeemHex, 175},
          {"topup", topup_op(), kTopupHex, 164},       {"spend", spend_op(), kSpendHex, 175},
          {"reverse", reverse_op(), kReverseHex, 175}, {"move", move_op(), kMoveHex, 153},
          {"pin_failure", pin_failure_op(), kPinFailureHex, 166},
          {"pin_reset", pin_reset_op(), kPinResetHex, 171}};
}

crypto::SigningKey golden_key() {
  auto key = crypto::SigningKey::from_seed(unhex(kSeedHex));
  EXPECT_TRUE(key.is_ok());
  return std::move(key).value();
}

void put_u64(Bytes& b, std::size_t off, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) b[off + i] = static_cast<std::uint8_t>(v >> (8 * i));
}

Bytes concat(const Bytes& a, const Bytes& b) {
  Bytes out = a;
  out.insert(out.end(), b.begin(), b.end());
  return out;
}

class SyncOpTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(crypto::init().is_ok()); }
};

// ---------------------------------------------------------------------------------------------
// Golden encodings.

void expect_golden(const Op& op, const char* golden_hex, std::size_t size) {
  ASSERT_TRUE(validate_op(op).is_ok()) << validate_op(op).to_string();
  Bytes got = encode_op(op);
  EXPECT_EQ(hex(got), golden_hex);
  EXPECT_EQ(got.size(), size);
}

TEST_F(SyncOpTest, EnrollEncodingMatchesGoldenBytes) {
  expect_golden(enroll_op(), kEnrollHex, 213);
}
TEST_F(SyncOpTest, ProfileEncodingMatchesGoldenBytes) {
  expect_golden(profile_op(), kProfileHex, 183);
}
TEST_F(SyncOpTest, EarnEncodingMatchesGoldenBytes) { expect_golden(earn_op(), kEarnHex, 175); }
TEST_F(SyncOpTest, RedeemEncodingMatchesGoldenBytes) {
  expect_golden(redeem_op(), kRedeemHex, 175);
}
TEST_F(SyncOpTest, TopupEncodingMatchesGoldenBytes) { expect_golden(topup_op(), kTopupHex, 164); }
TEST_F(SyncOpTest, SpendEncodingMatchesGoldenBytes) { expect_golden(spend_op(), kSpendHex, 175); }
TEST_F(SyncOpTest, ReverseEncodingMatchesGoldenBytes) {
  expect_golden(reverse_op(), kReverseHex, 175);
}
TEST_F(SyncOpTest, MoveEncodingMatchesGoldenBytes) { expect_golden(move_op(), kMoveHex, 153); }
TEST_F(SyncOpTest, PinFailureEncodingMatchesGoldenBytes) {
  expect_golden(pin_failure_op(), kPinFailureHex, 166);
}
TEST_F(SyncOpTest, PinResetEncodingMatchesGoldenBytes) {
  expect_golden(pin_reset_op(), kPinResetHex, 171);
}

TEST_F(SyncOpTest, FixedPartIs148BytesAndVariablePartStartsThere) {
  static_assert(kOpFixedBytes == 148);
  // The move op has an empty request_id and receipt and no fields: 148 + 2 + 2 + 1.
  Bytes move = encode_op(move_op());
  ASSERT_EQ(move.size(), kOpFixedBytes + 5);
  // The earn op's request_id length prefix sits at offset 148, its bytes right after it.
  Bytes earn = encode_op(earn_op());
  EXPECT_EQ(earn[kOffRequestId], 11);
  EXPECT_EQ(earn[kOffRequestId + 1], 0);
  EXPECT_EQ(earn[kOffRequestId + 2], 'p');
  EXPECT_EQ(earn[kOffRefKind], 0);
  EXPECT_EQ(earn[kOffAccount], 1);
}

TEST_F(SyncOpTest, FieldsAreEncodedInTheOrderGivenNotSorted) {
  // The order of fields is part of the signed bytes; decode keeps it so re-encoding reproduces
  // the exact bytes that were signed.
  Op op = profile_op();
  std::swap(op.fields[0], op.fields[1]);
  Bytes b = encode_op(op);
  EXPECT_NE(hex(b), kProfileHex);
  auto back = decode_op(b);
  ASSERT_TRUE(back.is_ok()) << back.status().to_string();
  EXPECT_EQ(*back, op);
  EXPECT_EQ(encode_op(*back), b);
}

TEST_F(SyncOpTest, GoldenBytesDecodeToTheOpAndReencodeIdentically) {
  for (const Golden& g : goldens()) {
    SCOPED_TRACE(g.name);
    Bytes b = unhex(g.hex);
    ASSERT_EQ(b.size(), g.size);
    auto op = decode_op(b);
    ASSERT_TRUE(op.is_ok()) << op.status().to_string();
    EXPECT_EQ(*op, g.op);
    EXPECT_EQ(encode_op(*op), b);
  }
}

TEST_F(SyncOpTest, FixedSeedGivesGoldenPublicKey) {
  crypto::SigningKey key = golden_key();
  EXPECT_EQ(hex(key.public_key()), kPublicKeyHex);
}

TEST_F(SyncOpTest, EarnSignatureAndHashMatchGoldenVector) {
  crypto::SigningKey key = golden_key();
  SignedOp s = sign_op(earn_op(), key);
  EXPECT_EQ(hex(s.signed_bytes), kEarnHex);
  EXPECT_EQ(hex(s.sig), kEarnSigHex);
  EXPECT_EQ(hex(s.hash), kEarnHashHex);
  // The hash is plain SHA-256 over signed bytes followed by the 64 signature bytes.
  Bytes concat_bytes = concat(unhex(kEarnHex), unhex(kEarnSigHex));
  EXPECT_EQ(hex(crypto::sha256(concat_bytes)), kEarnHashHex);
  EXPECT_EQ(hex(op_hash(s.signed_bytes, s.sig)), kEarnHashHex);
  EXPECT_TRUE(verify_op(s, key.public_key()).is_ok());
}

TEST_F(SyncOpTest, SignatureIsDeterministicForTheSameKeyAndOp) {
  crypto::SigningKey key = golden_key();
  for (const Golden& g : goldens()) {
    SCOPED_TRACE(g.name);
    SignedOp a = sign_op(g.op, key);
    SignedOp b = sign_op(g.op, key);
    EXPECT_EQ(a.sig, b.sig);
    EXPECT_EQ(a.hash, b.hash);
    EXPECT_TRUE(verify_op(a, key.public_key()).is_ok());
  }
}

// ---------------------------------------------------------------------------------------------
// docs/op-format.md: its worked example must stay identical to kEarnHex, so that a verifier
// written from the page alone agrees with the code.

bool is_hex_token(const std::string& t) {
  return !t.empty() && t.size() % 2 == 0 &&
         t.find_first_not_of("0123456789abcdef") == std::string::npos;
}

// Returns the lines of the first ``` block after the line containing `marker`.
std::vector<std::string> doc_block_after(const std::string& doc, const std::string& marker) {
  std::vector<std::string> lines;
  std::size_t at = doc.find(marker);
  if (at == std::string::npos) return lines;
  std::size_t open = doc.find("```\n", at);
  if (open == std::string::npos) return lines;
  std::size_t close = doc.find("\n```", open + 4);
  if (close == std::string::npos) return lines;
  std::istringstream in(doc.substr(open + 4, close - open - 4));
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

TEST_F(SyncOpTest, DocWorkedExampleIsTheEarnGoldenVector) {
#ifndef OUTPOST_SOURCE_DIR
  GTEST_SKIP() << "built without OUTPOST_SOURCE_DIR";
#else
  std::ifstream f(std::string(OUTPOST_SOURCE_DIR) + "/docs/op-format.md");
  ASSERT_TRUE(f) << "docs/op-format.md is missing";
  std::stringstream ss;
  ss << f.rdbuf();
  const std::string doc = ss.str();

  // The field-by-field table: every row's offset is the running byte count, and the hex tokens
  // of all rows together are the golden bytes.
  std::vector<std::string> rows = doc_block_after(doc, "Signed bytes (175 bytes), one row per");
  ASSERT_GT(rows.size(), 1u);
  std::string table_hex;
  for (std::size_t i = 1; i < rows.size(); ++i) {  // row 0 is the header
    std::istringstream in(rows[i]);
    std::size_t offset = 0;
    ASSERT_TRUE(in >> offset) << "row without an offset: " << rows[i];
    EXPECT_EQ(offset, table_hex.size() / 2) << "wrong offset in row: " << rows[i];
    for (std::string t; in >> t && is_hex_token(t);) table_hex += t;
  }
  EXPECT_EQ(table_hex, kEarnHex);

  // The one-string form.
  std::string flat;
  for (const std::string& line : doc_block_after(doc, "The same bytes as one hex string")) {
    flat += line;
  }
  EXPECT_EQ(flat, kEarnHex);

  // Key, signature and hash.
  const std::vector<std::string> sig_block = doc_block_after(doc, "Signed with the Ed25519 key");
  std::string joined;
  for (const std::string& line : sig_block) joined += line + "\n";
  EXPECT_NE(joined.find(std::string("seed       ") + kSeedHex), std::string::npos) << joined;
  EXPECT_NE(joined.find(std::string("public key ") + kPublicKeyHex), std::string::npos) << joined;
  const std::string sig(kEarnSigHex);
  EXPECT_NE(joined.find("sig        " + sig.substr(0, 64) + "\n           " + sig.substr(64)),
            std::string::npos)
      << joined;
  EXPECT_NE(joined.find(std::string("op hash    ") + kEarnHashHex), std::string::npos) << joined;
#endif
}

// ---------------------------------------------------------------------------------------------
// Decode rejections.

void expect_decode_fails(const Bytes& b, Code code) {
  auto op = decode_op(b);
  ASSERT_FALSE(op.is_ok()) << "decoded bytes that must be refused: " << hex(b);
  EXPECT_EQ(op.status().code(), code) << op.status().to_string();
}

TEST_F(SyncOpTest, BadMagicIsCorruption) {
  for (std::size_t i = 0; i < 4; ++i) {
    Bytes b = unhex(kEarnHex);
    b[i] ^= 0x20;  // "OPST" -> "oPST", ...
    expect_decode_fails(b, Code::kCorruption);
  }
}

TEST_F(SyncOpTest, UnknownVersionIsUnsupportedNotCorruption) {
  for (std::uint8_t v : {0, 2, 255}) {
    Bytes b = unhex(kEarnHex);
    b[kOffVersion] = v;
    expect_decode_fails(b, Code::kUnsupported);
  }
  // A newer version is reported as such even when the rest is garbage or absent.
  expect_decode_fails(unhex("4f50535402"), Code::kUnsupported);
}

TEST_F(SyncOpTest, UnknownKindIsCorruption) {
  for (std::uint8_t k : {0, 10, 255}) {
    Bytes b = unhex(kEarnHex);
    b[kOffKind] = k;
    expect_decode_fails(b, Code::kCorruption);
  }
}

TEST_F(SyncOpTest, UnknownAccountIsCorruption) {
  for (std::uint8_t a : {3, 255}) {
    Bytes b = unhex(kEarnHex);
    b[kOffAccount] = a;
    expect_decode_fails(b, Code::kCorruption);
  }
}

TEST_F(SyncOpTest, UnknownRefKindIsCorruption) {
  for (std::uint8_t k : {9, 255}) {
    Bytes b = unhex(kReverseHex);
    b[kOffRefKind] = k;
    expect_decode_fails(b, Code::kCorruption);
  }
}

TEST_F(SyncOpTest, UnknownFieldIdIsCorruption) {
  // Enroll: fixed 148 + request_id (2 + 10) + receipt (2) + count (1) = first field id at 163.
  constexpr std::size_t kFirstFieldId = 163;
  ASSERT_EQ(unhex(kEnrollHex)[kFirstFieldId], 1);
  for (std::uint8_t f : {0, 8, 255}) {
    Bytes b = unhex(kEnrollHex);
    b[kFirstFieldId] = f;
    expect_decode_fails(b, Code::kCorruption);
  }
}

TEST_F(SyncOpTest, EveryTruncatedPrefixIsCorruption) {
  for (const Golden& g : goldens()) {
    SCOPED_TRACE(g.name);
    Bytes b = unhex(g.hex);
    for (std::size_t n = 0; n < b.size(); ++n) {
      SCOPED_TRACE("prefix of " + std::to_string(n) + " bytes");
      expect_decode_fails(Bytes(b.begin(), b.begin() + static_cast<std::ptrdiff_t>(n)),
                          Code::kCorruption);
    }
  }
}

TEST_F(SyncOpTest, TrailingByteIsCorruption) {
  for (const Golden& g : goldens()) {
    SCOPED_TRACE(g.name);
    for (std::uint8_t extra : {0, 1, 0xff}) {
      Bytes b = unhex(g.hex);
      b.push_back(extra);
      expect_decode_fails(b, Code::kCorruption);
    }
  }
}

// The fixed part of the move golden (no strings, no fields) followed by `tail`.
Bytes move_fixed_then(const Bytes& tail) {
  Bytes fixed = unhex(kMoveHex);
  fixed.resize(kOpFixedBytes);
  return concat(fixed, tail);
}

Bytes str16(std::size_t len, char fill = 'x') {
  ByteWriter w;
  w.str16(std::string(len, fill));
  return w.take();
}

TEST_F(SyncOpTest, RequestIdAtLimitDecodesAndOneMoreByteIsCorruption) {
  Bytes at_limit = move_fixed_then(concat(str16(limits::kRequestIdBytesMax), unhex("000000")));
  EXPECT_TRUE(decode_op(at_limit).is_ok());
  expect_decode_fails(
      move_fixed_then(concat(str16(limits::kRequestIdBytesMax + 1), unhex("000000"))),
      Code::kCorruption);
}

TEST_F(SyncOpTest, ReceiptAtLimitDecodesAndOneMoreByteIsCorruption) {
  Bytes at_limit =
      move_fixed_then(concat(unhex("0000"), concat(str16(limits::kReceiptBytesMax), unhex("00"))));
  EXPECT_TRUE(decode_op(at_limit).is_ok());
  expect_decode_fails(move_fixed_then(concat(
                          unhex("0000"), concat(str16(limits::kReceiptBytesMax + 1), unhex("00")))),
                      Code::kCorruption);
}

TEST_F(SyncOpTest, FieldValueAtLimitDecodesAndOneMoreByteIsCorruption) {
  // A profile op with a single name field of the given length.
  auto profile_with_name = [](std::size_t len) {
    Bytes b = unhex(kProfileHex);
    b.resize(kOffRequestId);
    b = concat(b, unhex("00000000"
                        "01"
                        "02"));  // empty request_id and receipt, 1 field: name
    return concat(b, str16(len, 'n'));
  };
  auto ok = decode_op(profile_with_name(limits::kFieldValueBytesMax));
  ASSERT_TRUE(ok.is_ok()) << ok.status().to_string();
  EXPECT_EQ(ok->fields.at(0).value.size(), limits::kFieldValueBytesMax);
  expect_decode_fails(profile_with_name(limits::kFieldValueBytesMax + 1), Code::kCorruption);
}

TEST_F(SyncOpTest, LengthPrefixBeyondTheInputIsCorruption) {
  // request_id claims 65535 bytes; only 3 follow.
  expect_decode_fails(move_fixed_then(unhex("ffff000000")), Code::kCorruption);
  // request_id claims 10 bytes (within the limit); only 3 follow.
  expect_decode_fails(move_fixed_then(unhex("0a00000000")), Code::kCorruption);
}

TEST_F(SyncOpTest, SeventeenFieldsAreCorruptionBeforeAnyFieldIsRead) {
  Bytes b = unhex(kProfileHex);
  b.resize(kOffRequestId);
  b = concat(b, unhex("00000000"));
  b.push_back(static_cast<std::uint8_t>(limits::kFieldsPerOpMax + 1));
  for (std::size_t i = 0; i <= limits::kFieldsPerOpMax; ++i) {
    b.push_back(static_cast<std::uint8_t>(1 + i % 7));
    b = concat(b, str16(1));
  }
  auto op = decode_op(b);
  ASSERT_FALSE(op.is_ok());
  EXPECT_EQ(op.status().code(), Code::kCorruption);
  EXPECT_NE(op.status().message().find("too many fields"), std::string::npos)
      << op.status().to_string();
}

TEST_F(SyncOpTest, InputLargerThanTheOpMaximumIsCorruption) {
  Bytes b = unhex(kEarnHex);
  b.resize(limits::kOpSignedBytesMax + 1, 0);
  expect_decode_fails(b, Code::kCorruption);
}

// Well-formed bytes whose values break a per-kind rule: decode reports kCorruption because
// validate_op refuses them. One case per rule, each a byte patch of a golden vector.
struct BytePatch {
  const char* what;
  const char* golden;
  std::function<void(Bytes&)> patch;
};

TEST_F(SyncOpTest, NonCanonicalValuesAreRefusedByDecode) {
  const std::vector<BytePatch> cases = {
      {"target set on earn", kEarnHex, [](Bytes& b) { b[kOffTarget] = 1; }},
      {"target set on spend", kSpendHex, [](Bytes& b) { b[kOffTarget + 15] = 1; }},
      {"ref_origin set on earn", kEarnHex, [](Bytes& b) { b[kOffRefOrigin] = 1; }},
      {"ref_seq set on topup", kTopupHex, [](Bytes& b) { b[kOffRefSeq] = 1; }},
      {"ref_kind set on redeem", kRedeemHex, [](Bytes& b) { b[kOffRefKind] = 3; }},
      {"spend_minor on redeem", kRedeemHex, [](Bytes& b) { b[kOffSpend] = 1; }},
      {"spend_minor on move", kMoveHex, [](Bytes& b) { b[kOffSpend] = 1; }},
      {"zero member", kEarnHex,
       [](Bytes& b) { std::fill(b.begin() + kOffMember, b.begin() + kOffMember + 16, 0); }},
      {"zero origin", kEarnHex,
       [](Bytes& b) { std::fill(b.begin() + kOffOrigin, b.begin() + kOffOrigin + 16, 0); }},
      {"seq 0", kEarnHex, [](Bytes& b) { put_u64(b, kOffSeq, 0); }},
      {"genesis with a non-zero prev", kEnrollHex, [](Bytes& b) { b[kOffPrev + 31] = 1; }},
      {"earn on the wallet account", kEarnHex, [](Bytes& b) { b[kOffAccount] = 2; }},
      {"earn with no purchase", kEarnHex, [](Bytes& b) { put_u64(b, kOffSpend, 0); }},
      {"redeem of zero", kRedeemHex, [](Bytes& b) { put_u64(b, kOffAmount, 0); }},
      {"redeem from the wallet", kRedeemHex, [](Bytes& b) { b[kOffAccount] = 2; }},
      {"topup of points", kTopupHex, [](Bytes& b) { b[kOffAccount] = 1; }},
      {"spend with no account", kSpendHex, [](Bytes& b) { b[kOffAccount] = 0; }},
      {"amount above kAmountMax", kTopupHex,
       [](Bytes& b) { put_u64(b, kOffAmount, limits::kAmountMax + 1); }},
      {"spend_minor above kAmountMax", kEarnHex,
       [](Bytes& b) { put_u64(b, kOffSpend, limits::kAmountMax + 1); }},
      {"enroll with an amount", kEnrollHex, [](Bytes& b) { b[kOffAmount] = 1; }},
      {"enroll with an account", kEnrollHex, [](Bytes& b) { b[kOffAccount] = 1; }},
      {"enroll without a card", kEnrollHex, [](Bytes& b) { b[163] = 4; }},  // card -> birthday
      {"enroll with a duplicate field", kEnrollHex,
       [](Bytes& b) { b[163 + 3 + 16] = 1; }},  // name -> a second card
      {"profile with no fields", kProfileHex,
       [](Bytes& b) {
         b.resize(162);  // fixed + request_id (12) + receipt (2)
         b.push_back(0);
       }},
      {"fields on earn", kEarnHex,
       [](Bytes& b) {
         b.back() = 1;
         b.push_back(2);
         b.push_back(1);
         b.push_back(0);
         b.push_back('x');
       }},
      {"reverse of another origin's op", kReverseHex, [](Bytes& b) { b[kOffRefOrigin] ^= 1; }},
      {"reverse naming a later op", kReverseHex, [](Bytes& b) { put_u64(b, kOffRefSeq, kSeq); }},
      {"reverse naming seq 0", kReverseHex, [](Bytes& b) { put_u64(b, kOffRefSeq, 0); }},
      {"reverse of a move", kReverseHex, [](Bytes& b) { b[kOffRefKind] = 8; }},
      {"reverse of an enroll", kReverseHex, [](Bytes& b) { b[kOffRefKind] = 1; }},
      {"reverse with no ref_kind", kReverseHex, [](Bytes& b) { b[kOffRefKind] = 0; }},
      {"reverse of earn on the wallet", kReverseHex, [](Bytes& b) { b[kOffAccount] = 2; }},
      {"reverse of redeem carrying spend", kReverseHex, [](Bytes& b) { b[kOffRefKind] = 4; }},
      {"move to the origin itself", kMoveHex,
       [](Bytes& b) {
         std::copy(b.begin() + kOffOrigin, b.begin() + kOffOrigin + 16, b.begin() + kOffTarget);
       }},
      {"move with no target", kMoveHex,
       [](Bytes& b) { std::fill(b.begin() + kOffTarget, b.begin() + kOffTarget + 16, 0); }},
      {"move with no account", kMoveHex, [](Bytes& b) { b[kOffAccount] = 0; }},
      {"move of zero", kMoveHex, [](Bytes& b) { put_u64(b, kOffAmount, 0); }},
  };
  for (const BytePatch& c : cases) {
    SCOPED_TRACE(c.what);
    Bytes b = unhex(c.golden);
    c.patch(b);
    ASSERT_NE(hex(b), c.golden);
    expect_decode_fails(b, Code::kCorruption);
  }
}

// ---------------------------------------------------------------------------------------------
// validate_op on Op values: each per-kind rule refuses with kInvalidArgument.

struct OpMutation {
  const char* what;
  std::function<Op()> make;
};

TEST_F(SyncOpTest, ValidateRefusesEachBadShapeWithInvalidArgument) {
  const std::vector<OpMutation> cases = {
      {"kind none",
       [] {
         Op o = earn_op();
         o.kind = OpKind::kNone;
         return o;
       }},
      {"kind 10",
       [] {
         Op o = earn_op();
         o.kind = static_cast<OpKind>(10);
         return o;
       }},
      {"amount on pin_failure",
       [] {
         Op o = pin_failure_op();
         o.amount = 1;
         return o;
       }},
      {"fields on pin_failure",
       [] {
         Op o = pin_failure_op();
         o.fields = {{Field::kPinReset, "x"}};
         return o;
       }},
      {"target on earn",
       [] {
         Op o = earn_op();
         o.target = kTarget;
         return o;
       }},
      {"ref_seq on spend",
       [] {
         Op o = spend_op();
         o.ref_seq = 1;
         return o;
       }},
      {"ref_kind on move",
       [] {
         Op o = move_op();
         o.ref_kind = OpKind::kEarn;
         return o;
       }},
      {"fields on topup",
       [] {
         Op o = topup_op();
         o.fields = {{Field::kName, "x"}};
         return o;
       }},
      {"request_id too long",
       [] {
         Op o = earn_op();
         o.request_id.assign(limits::kRequestIdBytesMax + 1, 'r');
         return o;
       }},
      {"receipt too long",
       [] {
         Op o = earn_op();
         o.receipt.assign(limits::kReceiptBytesMax + 1, 'r');
         return o;
       }},
      {"field value too long",
       [] {
         Op o = profile_op();
         o.fields[0].value.assign(limits::kFieldValueBytesMax + 1, 'v');
         return o;
       }},
      {"seventeen fields",
       [] {
         Op o = profile_op();
         o.fields.assign(limits::kFieldsPerOpMax + 1, {Field::kName, "x"});
         return o;
       }},
      {"unknown field id",
       [] {
         Op o = profile_op();
         o.fields[0].field = static_cast<Field>(9);
         return o;
       }},
      {"duplicate field",
       [] {
         Op o = profile_op();
         o.fields[1].field = o.fields[0].field;
         return o;
       }},
      {"enroll without card",
       [] {
         Op o = enroll_op();
         o.fields.erase(o.fields.begin());
         return o;
       }},
      {"zero member",
       [] {
         Op o = earn_op();
         o.member = MemberId{};
         return o;
       }},
      {"seq 0",
       [] {
         Op o = earn_op();
         o.seq = 0;
         return o;
       }},
      {"genesis with prev",
       [] {
         Op o = earn_op();
         o.seq = 1;
         return o;
       }},
      {"reverse of redeem with spend",
       [] {
         Op o = reverse_op();
         o.ref_kind = OpKind::kRedeem;
         return o;
       }},
      {"reverse ref equal to own seq",
       [] {
         Op o = reverse_op();
         o.ref_seq = o.seq;
         return o;
       }},
      {"move target = origin",
       [] {
         Op o = move_op();
         o.target = o.origin;
         return o;
       }},
  };
  for (const OpMutation& c : cases) {
    SCOPED_TRACE(c.what);
    Status st = validate_op(c.make());
    EXPECT_EQ(st.code(), Code::kInvalidArgument) << st.to_string();
  }
}

TEST_F(SyncOpTest, ValidateAcceptsValuesAtTheirLimits) {
  Op topup = topup_op();
  topup.amount = limits::kAmountMax;
  topup.request_id.assign(limits::kRequestIdBytesMax, 'r');
  topup.receipt.assign(limits::kReceiptBytesMax, 'c');
  EXPECT_TRUE(validate_op(topup).is_ok());
  // An earn below one earn unit legitimately awards zero points.
  Op earn = earn_op();
  earn.amount = 0;
  earn.spend_minor = limits::kAmountMax;
  EXPECT_TRUE(validate_op(earn).is_ok());
  // Every field once, each value at its limit.
  Op profile = profile_op();
  profile.fields.clear();
  for (std::uint8_t f = 1; f <= sync::kFieldMax; ++f) {
    profile.fields.push_back(
        {static_cast<Field>(f), std::string(limits::kFieldValueBytesMax, 'v')});
  }
  ASSERT_TRUE(validate_op(profile).is_ok());
  Bytes b = encode_op(profile);
  EXPECT_LE(b.size(), limits::kOpSignedBytesMax);
  auto back = decode_op(b);
  ASSERT_TRUE(back.is_ok()) << back.status().to_string();
  EXPECT_EQ(*back, profile);
}

TEST_F(SyncOpTest, EncodeOfAnInvalidOpAbortsInsteadOfSigningGarbage) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  Op bad = earn_op();
  bad.target = kTarget;
  EXPECT_DEATH((void)encode_op(bad), "FATAL invariant violated");
}

// ---------------------------------------------------------------------------------------------
// Signature verification.

TEST_F(SyncOpTest, FlippedBitInAnySignedByteFailsVerification) {
  crypto::SigningKey key = golden_key();
  for (const Golden& g : goldens()) {
    SCOPED_TRACE(g.name);
    const SignedOp good = sign_op(g.op, key);
    ASSERT_TRUE(verify_op(good, key.public_key()).is_ok());
    for (std::size_t i = 0; i < good.signed_bytes.size(); ++i) {
      SignedOp bad = good;
      bad.signed_bytes[i] ^= static_cast<std::uint8_t>(1u << (i % 8));
      Status st = verify_op(bad, key.public_key());
      EXPECT_EQ(st.code(), Code::kCorruption) << "flipped byte " << i << " still verifies";
    }
  }
}

TEST_F(SyncOpTest, FlippedSignatureByteFailsVerification) {
  crypto::SigningKey key = golden_key();
  const SignedOp good = sign_op(earn_op(), key);
  for (std::size_t i = 0; i < good.sig.size(); ++i) {
    SignedOp bad = good;
    bad.sig[i] ^= 0x01;
    EXPECT_EQ(verify_op(bad, key.public_key()).code(), Code::kCorruption) << "sig byte " << i;
  }
}

TEST_F(SyncOpTest, WrongKeyFailsVerification) {
  crypto::SigningKey key = golden_key();
  Bytes other_seed = unhex(kSeedHex);
  other_seed[0] ^= 1;
  auto other = crypto::SigningKey::from_seed(other_seed);
  ASSERT_TRUE(other.is_ok());
  const SignedOp s = sign_op(earn_op(), key);
  EXPECT_EQ(verify_op(s, other->public_key()).code(), Code::kCorruption);
  EXPECT_EQ(verify_op(s, crypto::PublicKey{}).code(), Code::kCorruption);
}

TEST_F(SyncOpTest, HashNotMatchingSignedBytesAndSigFailsVerification) {
  crypto::SigningKey key = golden_key();
  const SignedOp good = sign_op(earn_op(), key);
  for (std::size_t i = 0; i < good.hash.size(); ++i) {
    SignedOp bad = good;
    bad.hash[i] ^= 0x80;
    EXPECT_EQ(verify_op(bad, key.public_key()).code(), Code::kCorruption) << "hash byte " << i;
  }
}

// ---------------------------------------------------------------------------------------------
// Framing: u32 LE length, signed bytes, 64-byte signature.

TEST_F(SyncOpTest, FramingIsLengthThenSignedBytesThenSignature) {
  crypto::SigningKey key = golden_key();
  ByteWriter w;
  write_signed_op(w, sign_op(earn_op(), key));
  EXPECT_EQ(hex(w.bytes()), std::string("af000000") + kEarnHex + kEarnSigHex);
}

TEST_F(SyncOpTest, FramedOpsOfEveryKindReadBackInOrder) {
  crypto::SigningKey key = golden_key();
  std::vector<SignedOp> written;
  ByteWriter w;
  for (const Golden& g : goldens()) {
    written.push_back(sign_op(g.op, key));
    write_signed_op(w, written.back());
  }
  Bytes buf = w.take();
  ByteReader r(buf);
  for (const SignedOp& want : written) {
    SCOPED_TRACE(kind_name(want.op.kind));
    auto got = read_signed_op(r);
    ASSERT_TRUE(got.is_ok()) << got.status().to_string();
    EXPECT_EQ(got->op, want.op);
    EXPECT_EQ(got->signed_bytes, want.signed_bytes);
    EXPECT_EQ(got->sig, want.sig);
    EXPECT_EQ(got->hash, want.hash);
    EXPECT_TRUE(verify_op(*got, key.public_key()).is_ok());
  }
  EXPECT_TRUE(r.at_end());
}

TEST_F(SyncOpTest, EveryTruncatedFrameIsCorruption) {
  crypto::SigningKey key = golden_key();
  ByteWriter w;
  write_signed_op(w, sign_op(earn_op(), key));
  const Bytes full = w.take();
  for (std::size_t n = 0; n < full.size(); ++n) {
    Bytes prefix(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(n));
    ByteReader r(prefix);
    auto got = read_signed_op(r);
    ASSERT_FALSE(got.is_ok()) << "read a frame cut to " << n << " bytes";
    EXPECT_EQ(got.status().code(), Code::kCorruption);
  }
}

TEST_F(SyncOpTest, FrameLengthAboveTheOpMaximumIsRefusedBeforeReading) {
  for (std::uint32_t len :
       {static_cast<std::uint32_t>(limits::kOpSignedBytesMax + 1), std::uint32_t{0xffffffff}}) {
    ByteWriter w;
    w.u32(len);
    Bytes filler(limits::kOpSignedBytesMax + 1 + 64, 0);
    w.raw(filler);
    Bytes buf = w.take();
    ByteReader r(buf);
    auto got = read_signed_op(r);
    ASSERT_FALSE(got.is_ok());
    EXPECT_EQ(got.status().code(), Code::kCorruption);
  }
}

TEST_F(SyncOpTest, FrameWhoseBodyIsNotAnOpIsCorruption) {
  crypto::SigningKey key = golden_key();
  SignedOp s = sign_op(earn_op(), key);
  s.signed_bytes[kOffKind] = 0;  // unknown kind inside a well-formed frame
  ByteWriter w;
  write_signed_op(w, s);
  Bytes buf = w.take();
  ByteReader r(buf);
  auto got = read_signed_op(r);
  ASSERT_FALSE(got.is_ok());
  EXPECT_EQ(got.status().code(), Code::kCorruption);
}

TEST_F(SyncOpTest, LoadRefusesASignatureThatIsNot64Bytes) {
  Bytes body = unhex(kEarnHex);
  Bytes sig = unhex(kEarnSigHex);
  for (std::size_t n : {0, 63, 65}) {
    Bytes s = sig;
    s.resize(n, 0);
    auto got = load_signed_op(body, s);
    ASSERT_FALSE(got.is_ok());
    EXPECT_EQ(got.status().code(), Code::kCorruption);
  }
  auto ok = load_signed_op(body, sig);
  ASSERT_TRUE(ok.is_ok());
  EXPECT_EQ(hex(ok->hash), kEarnHashHex);
}

// ---------------------------------------------------------------------------------------------
// Names, ids and op refs.

TEST_F(SyncOpTest, KindAndFieldNamesParseBack) {
  for (std::uint8_t k = 1; k <= sync::kOpKindMax; ++k) {
    OpKind out = OpKind::kNone;
    ASSERT_TRUE(parse_kind(kind_name(static_cast<OpKind>(k)), out)) << int{k};
    EXPECT_EQ(out, static_cast<OpKind>(k));
  }
  for (std::uint8_t f = 1; f <= sync::kFieldMax; ++f) {
    Field out = Field::kName;
    ASSERT_TRUE(parse_field(field_name(static_cast<Field>(f)), out)) << int{f};
    EXPECT_EQ(out, static_cast<Field>(f));
  }
  OpKind k = OpKind::kEarn;
  EXPECT_FALSE(parse_kind("none", k));
  EXPECT_FALSE(parse_kind("Earn", k));
  EXPECT_FALSE(parse_kind("", k));
  Field f = Field::kName;
  EXPECT_FALSE(parse_field("email", f));
}

TEST_F(SyncOpTest, ParseIdAcceptsExactly32HexDigits) {
  EXPECT_EQ(id_hex(kOrigin), "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf");
  auto id = parse_id("a0a1a2a3a4a5a6a7a8a9aaabacadaeaf");
  ASSERT_TRUE(id.is_ok());
  EXPECT_EQ(*id, kOrigin);
  auto upper = parse_id("A0A1A2A3A4A5A6A7A8A9AAABACADAEAF");
  ASSERT_TRUE(upper.is_ok());
  EXPECT_EQ(*upper, kOrigin);
  for (const std::string bad :
       {"", "a0a1a2a3a4a5a6a7a8a9aaabacadaea", "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf0",
        "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf00", "g0a1a2a3a4a5a6a7a8a9aaabacadaeaf",
        " 0a1a2a3a4a5a6a7a8a9aaabacadaeaf", "0x0a1a2a3a4a5a6a7a8a9aaabacadaeaf"}) {
    auto r = parse_id(bad);
    ASSERT_FALSE(r.is_ok()) << "accepted id '" << bad << "'";
    EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
  }
}

TEST_F(SyncOpTest, OpRefRoundTripsAndParses) {
  EXPECT_EQ(op_ref_string(kOrigin, 258), "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf:258");
  NodeId origin{};
  std::uint64_t seq = 0;
  ASSERT_TRUE(parse_op_ref(op_ref_string(kOrigin, 258), origin, seq));
  EXPECT_EQ(origin, kOrigin);
  EXPECT_EQ(seq, 258u);
  ASSERT_TRUE(parse_op_ref("a0a1a2a3a4a5a6a7a8a9aaabacadaeaf:1", origin, seq));
  EXPECT_EQ(seq, 1u);
  // The longest accepted seq: 19 digits, so the decimal value can never overflow u64.
  ASSERT_TRUE(parse_op_ref("a0a1a2a3a4a5a6a7a8a9aaabacadaeaf:9999999999999999999", origin, seq));
  EXPECT_EQ(seq, 9999999999999999999ULL);
}

TEST_F(SyncOpTest, MalformedOpRefIsRefusedAndLeavesOutputsUntouched) {
  const std::string id = "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf";
  const std::vector<std::string> bads = {
      "",
      id,                            // no seq
      id + ":",                      // empty seq
      id + ":0",                     // seq starts at 1
      id + ":-1",                    // sign
      id + ":+1",                    // sign
      id + ": 1",                    // space
      id + ":1 ",                    // trailing space
      id + ":1x",                    // junk
      id + ":1:2",                   // second colon
      id + ":0x10",                  // hex seq
      id + ":18446744073709551616",  // 2^64: 20 digits
      id + ":10000000000000000000",  // 20 digits, fits u64 but refused by the bound
      id.substr(1) + ":1",           // 31-digit id
      id + "0:1",                    // 33-digit id
      ":1",                          // no id
      "g" + id.substr(1) + ":1",     // non-hex id
  };
  for (const std::string& bad : bads) {
    NodeId origin = kTarget;
    std::uint64_t seq = 77;
    EXPECT_FALSE(parse_op_ref(bad, origin, seq)) << "accepted op ref '" << bad << "'";
    EXPECT_EQ(origin, kTarget) << bad;
    EXPECT_EQ(seq, 77u) << bad;
  }
}

}  // namespace
}  // namespace outpost::sync
