// crypto/ basics (crypto/src/crypto.cc): Ed25519 sign/verify, SHA-256 and BLAKE2b against
// published answers, hex, constant-time comparison, secret wiping, and key files: mode 0600 on
// write, refused when group/world can read them, damage detected rather than loaded as a
// different key, never overwritten.
#include <gtest/gtest.h>
#include <sodium.h>
#include <sys/stat.h>

#include <algorithm>
#include <array>
#include <string>

#include "outpost/crypto/crypto.h"
#include "test_util.h"

namespace outpost::crypto {
namespace {

class CryptoBasicsTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(init().is_ok()); }
};

Bytes bytes_of(const std::string& s) { return Bytes(s.begin(), s.end()); }

Bytes seed_bytes(std::uint8_t first) {
  Bytes seed(32);
  for (std::size_t i = 0; i < seed.size(); ++i) seed[i] = static_cast<std::uint8_t>(first + i);
  return seed;
}

// --- signing ---

TEST_F(CryptoBasicsTest, SignatureVerifiesUnderItsOwnKey) {
  SigningKey key = SigningKey::generate();
  Bytes msg = bytes_of("topup 500 for member 42");
  Signature sig = key.sign(msg);
  EXPECT_TRUE(verify(key.public_key(), msg, sig));
}

TEST_F(CryptoBasicsTest, SignatureFailsOnAlteredMessage) {
  SigningKey key = SigningKey::generate();
  Bytes msg = bytes_of("topup 500 for member 42");
  Signature sig = key.sign(msg);
  msg[6] ^= 0x01;
  EXPECT_FALSE(verify(key.public_key(), msg, sig));
}

TEST_F(CryptoBasicsTest, SignatureFailsOnAlteredSignature) {
  SigningKey key = SigningKey::generate();
  Bytes msg = bytes_of("spend 100");
  Signature sig = key.sign(msg);
  for (std::size_t i : {std::size_t{0}, std::size_t{31}, std::size_t{63}}) {
    Signature bad = sig;
    bad[i] ^= 0x80;
    EXPECT_FALSE(verify(key.public_key(), msg, bad)) << "flipped byte " << i;
  }
}

TEST_F(CryptoBasicsTest, SignatureFailsUnderAnotherKey) {
  SigningKey a = SigningKey::generate();
  SigningKey b = SigningKey::generate();
  Bytes msg = bytes_of("earn");
  EXPECT_FALSE(verify(b.public_key(), msg, a.sign(msg)));
  EXPECT_NE(a.public_key(), b.public_key());
}

TEST_F(CryptoBasicsTest, KeyFromSeedIsDeterministicAndMatchesLibsodium) {
  Bytes seed = seed_bytes(1);
  auto a = SigningKey::from_seed(seed);
  auto b = SigningKey::from_seed(seed);
  ASSERT_TRUE(a.is_ok() && b.is_ok());
  EXPECT_EQ(a->public_key(), b->public_key());
  // Ed25519 signatures are deterministic: same key and message, same signature.
  Bytes msg = bytes_of("abc");
  EXPECT_EQ(a->sign(msg), b->sign(msg));

  PublicKey pk{};
  std::array<std::uint8_t, 64> sk{};
  crypto_sign_seed_keypair(pk.data(), sk.data(), seed.data());
  EXPECT_EQ(a->public_key(), pk);
  EXPECT_EQ(to_hex(a->seed()), to_hex(seed));
}

TEST_F(CryptoBasicsTest, Rfc8032Test1SignatureIsReproduced) {
  // RFC 8032 section 7.1, TEST 1 (empty message).
  auto seed = from_hex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60");
  ASSERT_TRUE(seed.is_ok());
  auto key = SigningKey::from_seed(*seed);
  ASSERT_TRUE(key.is_ok());
  EXPECT_EQ(to_hex(key->public_key()),
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
  Signature sig = key->sign({});
  EXPECT_EQ(
      to_hex(sig),
      "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e3970"
      "1cf9b46bd25bf5f0595bbe24655141438e7a100b");
  EXPECT_TRUE(verify(key->public_key(), {}, sig));
}

TEST_F(CryptoBasicsTest, SeedOfWrongLengthIsRejected) {
  EXPECT_EQ(SigningKey::from_seed(Bytes(31)).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(SigningKey::from_seed(Bytes(33)).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(SigningKey::from_seed({}).status().code(), Code::kInvalidArgument);
}

// --- hashing ---

TEST_F(CryptoBasicsTest, Sha256KnownAnswerAbc) {
  // FIPS 180-2 appendix B.1.
  EXPECT_EQ(to_hex(sha256(view(std::string("abc")))),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST_F(CryptoBasicsTest, Sha256KnownAnswerEmptyAndTwoBlocks) {
  EXPECT_EQ(to_hex(sha256(ByteView{})),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(
      to_hex(sha256(view(std::string("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")))),
      "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

TEST_F(CryptoBasicsTest, Sha256OfPartsEqualsSha256OfConcatenation) {
  std::string a = "ab", b = "", c = "c";
  EXPECT_EQ(sha256({view(a), view(b), view(c)}), sha256(view(std::string("abc"))));
}

TEST_F(CryptoBasicsTest, Blake2bKnownAnswerAbc) {
  // RFC 7693 appendix A: BLAKE2b-512("abc").
  EXPECT_EQ(to_hex(blake2b(view(std::string("abc")), 64)),
            "ba80a53f981c4d0d6a2797b69f12f6e94c212f14685ac4b74b12bb6fdbffa2d17d87c5392aab792dc252d5"
            "de4533cc9518d38aa8dbf1925ab92386edd4009923");
}

TEST_F(CryptoBasicsTest, Blake2bEmptyAndLengthsDiffer) {
  // BLAKE2b-512("") from the reference implementation.
  EXPECT_EQ(to_hex(blake2b({}, 64)),
            "786a02f742015903c6c6fd852552d272912f4740e15847618a86e217f71f5419d25e1031afee585313896"
            "444934eb04b903a685b1448b755d56f701afe9be2ce");
  Bytes h32 = blake2b(view(std::string("abc")), 32);
  EXPECT_EQ(h32.size(), 32u);
  // The output length is a BLAKE2b parameter, so a 32-byte digest is not a prefix of the 64.
  Bytes h64 = blake2b(view(std::string("abc")), 64);
  EXPECT_NE(Bytes(h64.begin(), h64.begin() + 32), h32);
}

// --- hex, comparison, wiping ---

TEST_F(CryptoBasicsTest, HexRoundTripsEveryByteValue) {
  Bytes all(256);
  for (int i = 0; i < 256; ++i) all[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(i);
  std::string hex = to_hex(all);
  EXPECT_EQ(hex.size(), 512u);
  EXPECT_EQ(hex.substr(0, 8), "00010203");
  EXPECT_EQ(hex.substr(504), "fcfdfeff");
  auto back = from_hex(hex);
  ASSERT_TRUE(back.is_ok());
  EXPECT_EQ(*back, all);
  auto upper = from_hex("DEADbeef");
  ASSERT_TRUE(upper.is_ok());
  EXPECT_EQ(to_hex(*upper), "deadbeef");
  auto empty = from_hex("");
  ASSERT_TRUE(empty.is_ok());
  EXPECT_TRUE(empty->empty());
}

TEST_F(CryptoBasicsTest, HexRejectsOddLengthAndNonHexCharacters) {
  for (const char* bad : {"a", "abc", "0g", "zz", " 0", "00 ", "0x00", "-1", "+1", "\xc3\xa9"}) {
    auto r = from_hex(bad);
    EXPECT_FALSE(r.is_ok()) << "'" << bad << "' was accepted";
    if (!r.is_ok()) {
      EXPECT_EQ(r.status().code(), Code::kInvalidArgument) << bad;
    }
  }
  // An embedded NUL is not a hex digit either.
  EXPECT_FALSE(from_hex(std::string_view("0\0", 2)).is_ok());
}

TEST_F(CryptoBasicsTest, CtEqualComparesLengthAndContent) {
  Bytes a = bytes_of("secret-token"), b = bytes_of("secret-token");
  EXPECT_TRUE(ct_equal(a, b));
  b.back() ^= 1;
  EXPECT_FALSE(ct_equal(a, b));
  EXPECT_FALSE(ct_equal(a, Bytes(a.begin(), a.end() - 1)));
  EXPECT_TRUE(ct_equal({}, {}));
  EXPECT_FALSE(ct_equal({}, a));
}

TEST_F(CryptoBasicsTest, WipeZeroesAndSecretBytesMoveLeavesSourceEmpty) {
  Bytes secret = bytes_of("hunter2");
  wipe(secret);
  EXPECT_EQ(secret, Bytes(7, 0));
  wipe({});  // no-op, must not crash

  SecretBytes s(ByteView(bytes_of("key material")));
  EXPECT_EQ(s.size(), 12u);
  SecretBytes moved(std::move(s));
  EXPECT_EQ(moved.size(), 12u);
  EXPECT_EQ(s.size(), 0u);  // NOLINT(bugprone-use-after-move): checking the moved-from state
  SecretBytes assigned;
  assigned = std::move(moved);
  EXPECT_EQ(assigned.size(), 12u);
  EXPECT_EQ(std::string(assigned.data(), assigned.data() + assigned.size()), "key material");
}

TEST_F(CryptoBasicsTest, RandomBytesAreNotConstant) {
  std::array<std::uint8_t, 32> a{}, b{};
  random_bytes(a);
  random_bytes(b);
  EXPECT_NE(a, b);
  EXPECT_NE(a, (std::array<std::uint8_t, 32>{}));
}

// --- key files ---

class CryptoKeyFileTest : public CryptoBasicsTest {
 protected:
  // Writes a signing key to `key_path_` and remembers its public key.
  void write_key() {
    SigningKey key = SigningKey::generate();
    public_key_ = key.public_key();
    ASSERT_TRUE(write_signing_key(key_path_, key).is_ok());
  }
  // Replaces the key file's content, keeping mode 0600.
  void rewrite(const std::string& content) {
    test::write_file(key_path_, content);
    ::chmod(key_path_.c_str(), 0600);
  }
  Code read_code() { return read_signing_key(key_path_).status().code(); }

  test::TempDir dir_{"outpost-keyfile"};
  std::string key_path_ = dir_.file("node.key");
  PublicKey public_key_{};
};

TEST_F(CryptoKeyFileTest, WrittenWithMode0600EvenUnderPermissiveUmask) {
  mode_t old = ::umask(0);
  write_key();
  ::umask(old);
  EXPECT_EQ(test::file_mode(key_path_), 0600);
}

TEST_F(CryptoKeyFileTest, ReadBackGivesTheSameKey) {
  write_key();
  auto back = read_signing_key(key_path_);
  ASSERT_TRUE(back.is_ok()) << back.status().to_string();
  EXPECT_EQ(back->public_key(), public_key_);
  Bytes msg = bytes_of("op");
  EXPECT_TRUE(verify(public_key_, msg, back->sign(msg)));
}

TEST_F(CryptoKeyFileTest, FileIsOneLineInTheDocumentedFormat) {
  write_key();
  std::string text = test::read_file(key_path_);
  ASSERT_FALSE(text.empty());
  EXPECT_EQ(text.rfind("outpost-key v1 ed25519-seed ", 0), 0u) << text;
  EXPECT_EQ(text.back(), '\n');
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 1);
  EXPECT_EQ(std::count(text.begin(), text.end(), ' '), 4);
}

TEST_F(CryptoKeyFileTest, GroupReadableFileIsRefusedWithPermission) {
  write_key();
  ASSERT_EQ(::chmod(key_path_.c_str(), 0640), 0);
  auto r = read_signing_key(key_path_);
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), Code::kPermission);
  EXPECT_NE(r.status().message().find("chmod 600"), std::string::npos) << r.status().message();
}

TEST_F(CryptoKeyFileTest, WorldReadableFileIsRefusedWithPermission) {
  write_key();
  ASSERT_EQ(::chmod(key_path_.c_str(), 0604), 0);
  EXPECT_EQ(read_code(), Code::kPermission);
}

TEST_F(CryptoKeyFileTest, GroupWritableFileIsRefusedWithPermission) {
  write_key();
  ASSERT_EQ(::chmod(key_path_.c_str(), 0620), 0);
  EXPECT_EQ(read_code(), Code::kPermission);
}

TEST_F(CryptoKeyFileTest, OwnerReadOnlyFileIsAccepted) {
  write_key();
  ASSERT_EQ(::chmod(key_path_.c_str(), 0400), 0);
  auto back = read_signing_key(key_path_);
  ASSERT_TRUE(back.is_ok()) << back.status().to_string();
  EXPECT_EQ(back->public_key(), public_key_);
}

TEST_F(CryptoKeyFileTest, FlippedSecretHexCharIsCorruptionNotAnotherKey) {
  write_key();
  std::string text = test::read_file(key_path_);
  std::size_t pos = std::string("outpost-key v1 ed25519-seed ").size() + 10;
  text[pos] = text[pos] == 'a' ? 'b' : 'a';  // still hex: only the check can catch it
  rewrite(text);
  auto r = read_signing_key(key_path_);
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), Code::kCorruption);
  EXPECT_NE(r.status().message().find(key_path_), std::string::npos) << r.status().message();
}

TEST_F(CryptoKeyFileTest, FlippedCheckHexCharIsCorruption) {
  write_key();
  std::string text = test::read_file(key_path_);
  std::size_t pos = text.size() - 3;  // inside CHECK, before the newline
  text[pos] = text[pos] == '0' ? '1' : '0';
  rewrite(text);
  EXPECT_EQ(read_code(), Code::kCorruption);
}

TEST_F(CryptoKeyFileTest, CheckOfAnotherKeyIsCorruption) {
  write_key();
  std::string mine = test::read_file(key_path_);
  test::TempDir other_dir("outpost-keyfile2");
  ASSERT_TRUE(write_signing_key(other_dir.file("k"), SigningKey::generate()).is_ok());
  std::string theirs = test::read_file(other_dir.file("k"));
  // Splice: my secret, their check.
  std::string spliced = mine.substr(0, mine.rfind(' ')) + theirs.substr(theirs.rfind(' '));
  rewrite(spliced);
  EXPECT_EQ(read_code(), Code::kCorruption);
}

TEST_F(CryptoKeyFileTest, NonHexSecretIsCorruption) {
  write_key();
  std::string text = test::read_file(key_path_);
  std::size_t pos = std::string("outpost-key v1 ed25519-seed ").size();
  text[pos] = 'z';
  rewrite(text);
  EXPECT_EQ(read_code(), Code::kCorruption);
}

TEST_F(CryptoKeyFileTest, TruncatedFileIsCorruption) {
  write_key();
  std::string text = test::read_file(key_path_);
  for (std::size_t keep : {text.size() - 1, text.size() / 2, std::size_t{5}, std::size_t{0}}) {
    rewrite(text.substr(0, keep));
    EXPECT_EQ(read_code(), Code::kCorruption) << "kept " << keep << " bytes";
  }
  // Cut inside the secret but with the newline restored: wrong field count or seed length.
  rewrite(text.substr(0, 40) + "\n");
  EXPECT_EQ(read_code(), Code::kCorruption);
}

TEST_F(CryptoKeyFileTest, GarbageFileIsCorruption) {
  for (const std::string& junk :
       {std::string("hello world\n"), std::string("\x00\x01\x02\x03\n", 5),
        std::string("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5 a b\n"), std::string(5000, 'a') + "\n",
        std::string("outpost-key v1 ed25519-seed 00 00 extra\n")}) {
    rewrite(junk);
    auto r = read_signing_key(key_path_);
    ASSERT_FALSE(r.is_ok());
    EXPECT_EQ(r.status().code(), Code::kCorruption) << r.status().to_string();
  }
}

TEST_F(CryptoKeyFileTest, SecretOfWrongLengthWithValidCheckIsCorruption) {
  // A well-formed file of the right kind whose secret is 16 bytes, not a 32-byte seed.
  ASSERT_TRUE(write_key_file(key_path_, "ed25519-seed", Bytes(16, 7)).is_ok());
  EXPECT_EQ(read_code(), Code::kCorruption);
}

TEST_F(CryptoKeyFileTest, UnknownVersionIsUnsupported) {
  write_key();
  std::string text = test::read_file(key_path_);
  text.replace(text.find(" v1 "), 4, " v9 ");
  rewrite(text);
  EXPECT_EQ(read_code(), Code::kUnsupported);
}

TEST_F(CryptoKeyFileTest, MissingFileIsNotFound) {
  EXPECT_EQ(read_code(), Code::kNotFound);
  EXPECT_EQ(read_key_file(dir_.file("nope"), "ed25519-seed").status().code(), Code::kNotFound);
}

TEST_F(CryptoKeyFileTest, WrongKindIsRefused) {
  Bytes secret(32, 9);
  ASSERT_TRUE(write_key_file(key_path_, "x25519-secret", secret).is_ok());
  auto r = read_signing_key(key_path_);
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
  EXPECT_NE(r.status().message().find("x25519-secret"), std::string::npos);
  // The right kind reads the same bytes back.
  auto raw = read_key_file(key_path_, "x25519-secret");
  ASSERT_TRUE(raw.is_ok());
  EXPECT_EQ(Bytes(raw->data(), raw->data() + raw->size()), secret);
}

TEST_F(CryptoKeyFileTest, BadKindIsRejectedOnWrite) {
  for (const char* kind : {"", "Has-Upper", "has space", "semi;colon"}) {
    EXPECT_EQ(write_key_file(key_path_, kind, Bytes(32)).code(), Code::kInvalidArgument) << kind;
  }
  EXPECT_EQ(test::file_mode(key_path_), -1) << "a refused write must not create the file";
}

TEST_F(CryptoKeyFileTest, ExistingFileIsNotOverwritten) {
  write_key();
  std::string before = test::read_file(key_path_);
  Status st = write_signing_key(key_path_, SigningKey::generate());
  EXPECT_FALSE(st.is_ok());
  EXPECT_EQ(test::read_file(key_path_), before);
  auto back = read_signing_key(key_path_);
  ASSERT_TRUE(back.is_ok());
  EXPECT_EQ(back->public_key(), public_key_);
}

TEST_F(CryptoKeyFileTest, DirectoryInsteadOfFileIsRefused) {
  ASSERT_EQ(::mkdir(key_path_.c_str(), 0700), 0);
  auto r = read_signing_key(key_path_);
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), Code::kCorruption) << r.status().to_string();
}

}  // namespace
}  // namespace outpost::crypto
