// noise-vectors: checks crypto/src/noise.cc against published Noise test vectors (the Noise wiki
// / cacophony JSON format: {"vectors": [{protocol_name, init_*, resp_*, handshake_hash,
// messages: [{payload, ciphertext}]}]}). Runs every vector of a protocol Outpost implements
// (Noise_XX and Noise_IK over 25519/ChaChaPoly/BLAKE2b), handshake and transport messages, and
// skips the rest. Single-threaded command-line tool; see docs/noise.md.
//
// Exit codes: 0 all run vectors passed; 1 a vector failed or none ran; 2 usage error or
// unparseable file; 77 the file does not exist (CTest's SKIP_RETURN_CODE).
#include <cstdio>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "outpost/crypto/crypto.h"
#include "outpost/crypto/noise.h"

namespace {

using outpost::Result;
using outpost::Status;
using namespace outpost::crypto;
using json = nlohmann::json;

constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;
constexpr int kExitSkipped = 77;
// The vector files are a few megabytes; refuse to read anything absurdly larger.
constexpr std::uintmax_t kVectorFileBytesMax = std::uintmax_t{64} * 1024 * 1024;

void print_usage(std::FILE* out) {
  std::fprintf(out,
               "usage: noise-vectors FILE\n"
               "Runs the Noise test vectors in FILE (Noise wiki / cacophony JSON format) for\n"
               "Noise_XX_25519_ChaChaPoly_BLAKE2b and Noise_IK_25519_ChaChaPoly_BLAKE2b, checking\n"
               "every handshake and transport ciphertext and the handshake hash. Other protocols\n"
               "are skipped. Exit status: 0 all passed, 1 a failure or nothing ran, 2 usage or\n"
               "parse error, 77 FILE not found.\n");
}

std::optional<NoisePattern> implemented_pattern(const std::string& protocol_name) {
  if (protocol_name == noise_protocol_name(NoisePattern::kXX)) {
    return NoisePattern::kXX;
  }
  if (protocol_name == noise_protocol_name(NoisePattern::kIK)) {
    return NoisePattern::kIK;
  }
  return std::nullopt;
}

// Returns the bytes of hex string field `key`, empty bytes if absent and not `required`.
Result<Bytes> hex_field(const json& object, const char* key, bool required) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) {
    if (required) {
      return Status::invalid(std::string("missing field ") + key);
    }
    return Bytes();
  }
  if (!it->is_string()) {
    return Status::invalid(std::string("field ") + key + " is not a string");
  }
  auto bytes = from_hex(it->get<std::string>());
  if (!bytes.is_ok()) {
    return bytes.status().with_context(std::string("field ") + key);
  }
  return bytes;
}

Result<std::optional<PublicKey>> optional_public_key(const json& vector, const char* key) {
  OUTPOST_ASSIGN_OR_RETURN(Bytes bytes, hex_field(vector, key, false));
  if (bytes.empty()) {
    return std::optional<PublicKey>();
  }
  if (bytes.size() != kNoiseDhBytes) {
    return Status::invalid(std::string("field ") + key + " is not 32 bytes");
  }
  PublicKey pk{};
  std::copy(bytes.begin(), bytes.end(), pk.begin());
  return std::optional<PublicKey>(pk);
}

// Builds one side of the vector's handshake from its `prefix` ("init" or "resp") fields.
Result<HandshakeState> make_party(const json& vector, NoisePattern pattern, NoiseRole role) {
  const std::string prefix = role == NoiseRole::kInitiator ? "init" : "resp";
  OUTPOST_ASSIGN_OR_RETURN(Bytes prologue,
                           hex_field(vector, (prefix + "_prologue").c_str(), false));
  OUTPOST_ASSIGN_OR_RETURN(Bytes s_priv, hex_field(vector, (prefix + "_static").c_str(), true));
  OUTPOST_ASSIGN_OR_RETURN(Bytes e_priv, hex_field(vector, (prefix + "_ephemeral").c_str(), true));
  OUTPOST_ASSIGN_OR_RETURN(std::optional<PublicKey> rs,
                           optional_public_key(vector, (prefix + "_remote_static").c_str()));
  OUTPOST_ASSIGN_OR_RETURN(X25519KeyPair s, X25519KeyPair::from_private(s_priv));
  OUTPOST_ASSIGN_OR_RETURN(X25519KeyPair e, X25519KeyPair::from_private(e_priv));
  wipe(s_priv);
  wipe(e_priv);
  OUTPOST_ASSIGN_OR_RETURN(HandshakeState hs,
                           HandshakeState::create(pattern, role, prologue, s, rs));
  OUTPOST_RETURN_IF_ERROR(hs.set_fixed_ephemeral(e));
  return hs;
}

// Sends message `index` from `sender` to `receiver` and compares it with the vector.
Status check_message(const json& message, std::size_t index, HandshakeState& sender,
                     HandshakeState& receiver) {
  const std::string where = "message " + std::to_string(index);
  OUTPOST_ASSIGN_OR_RETURN(Bytes payload, hex_field(message, "payload", true));
  OUTPOST_ASSIGN_OR_RETURN(Bytes expected, hex_field(message, "ciphertext", true));
  auto written = sender.write_message(payload);
  if (!written.is_ok()) {
    return written.status().with_context(where + " write");
  }
  if (*written != expected) {
    return Status::corruption(where + ": ciphertext " + to_hex(*written) + " != expected " +
                              to_hex(expected));
  }
  auto read = receiver.read_message(*written);
  if (!read.is_ok()) {
    return read.status().with_context(where + " read");
  }
  if (*read != payload) {
    return Status::corruption(where + ": read back a different payload");
  }
  return Status::ok();
}

Status check_transport(const json& message, std::size_t index, CipherState& send,
                       CipherState& receive) {
  const std::string where = "transport message " + std::to_string(index);
  OUTPOST_ASSIGN_OR_RETURN(Bytes payload, hex_field(message, "payload", true));
  OUTPOST_ASSIGN_OR_RETURN(Bytes expected, hex_field(message, "ciphertext", true));
  auto sealed = send.encrypt_with_ad({}, payload);
  if (!sealed.is_ok()) {
    return sealed.status().with_context(where + " encrypt");
  }
  if (*sealed != expected) {
    return Status::corruption(where + ": ciphertext " + to_hex(*sealed) + " != expected " +
                              to_hex(expected));
  }
  auto opened = receive.decrypt_with_ad({}, *sealed);
  if (!opened.is_ok()) {
    return opened.status().with_context(where + " decrypt");
  }
  if (*opened != payload) {
    return Status::corruption(where + ": decrypted a different payload");
  }
  return Status::ok();
}

// Runs one vector: handshake messages, the handshake hash, then transport messages, which keep
// alternating initiator -> responder -> initiator after the handshake (the format's convention
// for two-way patterns).
Status run_vector(const json& vector, NoisePattern pattern) {
  OUTPOST_ASSIGN_OR_RETURN(HandshakeState init, make_party(vector, pattern, NoiseRole::kInitiator));
  OUTPOST_ASSIGN_OR_RETURN(HandshakeState resp, make_party(vector, pattern, NoiseRole::kResponder));
  auto messages = vector.find("messages");
  if (messages == vector.end() || !messages->is_array()) {
    return Status::invalid("missing messages array");
  }
  std::size_t index = 0;
  for (; index < messages->size() && !init.is_complete(); ++index) {
    const bool from_initiator = index % 2 == 0;
    OUTPOST_RETURN_IF_ERROR(check_message((*messages)[index], index, from_initiator ? init : resp,
                                          from_initiator ? resp : init));
  }
  if (!init.is_complete() || !resp.is_complete()) {
    return Status::invalid("vector ends before the handshake completes");
  }
  OUTPOST_ASSIGN_OR_RETURN(Bytes expected_hash, hex_field(vector, "handshake_hash", false));
  const Bytes init_hash(init.handshake_hash().begin(), init.handshake_hash().end());
  const Bytes resp_hash(resp.handshake_hash().begin(), resp.handshake_hash().end());
  if (init_hash != resp_hash) {
    return Status::corruption("the two sides' handshake hashes differ");
  }
  if (!expected_hash.empty() && init_hash != expected_hash) {
    return Status::corruption("handshake hash " + to_hex(init_hash) + " != expected " +
                              to_hex(expected_hash));
  }
  OUTPOST_ASSIGN_OR_RETURN(NoiseTransport init_t, init.split());
  OUTPOST_ASSIGN_OR_RETURN(NoiseTransport resp_t, resp.split());
  for (; index < messages->size(); ++index) {
    const bool from_initiator = index % 2 == 0;
    OUTPOST_RETURN_IF_ERROR(check_transport((*messages)[index], index,
                                            from_initiator ? init_t.send : resp_t.send,
                                            from_initiator ? resp_t.receive : init_t.receive));
  }
  return Status::ok();
}

// Returns why a vector of an implemented protocol name still cannot run here, if it cannot:
// old-format Noise Pipes vectors mark a fallback handshake with "fallback", and PSK vectors
// carry pre-shared keys (their names say "psk", so they normally never get here).
std::optional<std::string> unsupported_modifier(const json& vector) {
  for (const char* key : {"fallback", "fallback_pattern", "init_psk", "resp_psk"}) {
    auto it = vector.find(key);
    if (it != vector.end() && !it->is_null() && *it != false) {
      return std::string("uses ") + key;
    }
  }
  for (const char* key : {"init_psks", "resp_psks"}) {
    auto it = vector.find(key);
    if (it != vector.end() && it->is_array() && !it->empty()) {
      return std::string("uses ") + key;
    }
  }
  return std::nullopt;
}

int run(int argc, char** argv) {
  if (argc == 2 && (std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0)) {
    print_usage(stdout);
    return kExitOk;
  }
  if (argc != 2 || argv[1][0] == '-') {
    print_usage(stderr);
    return kExitUsage;
  }
  const std::string path = argv[1];
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    std::printf("noise-vectors: skipping: vector file %s not found\n", path.c_str());
    return kExitSkipped;
  }
  const std::uintmax_t file_bytes = std::filesystem::file_size(path, ec);
  if (ec || file_bytes > kVectorFileBytesMax) {
    std::fprintf(stderr, "noise-vectors: %s: not a readable vector file of at most %ju bytes\n",
                 path.c_str(), kVectorFileBytesMax);
    return kExitUsage;
  }
  if (Status st = init(); !st.is_ok()) {
    std::fprintf(stderr, "noise-vectors: %s\n", st.to_string().c_str());
    return kExitFailed;
  }

  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "noise-vectors: %s: cannot open\n", path.c_str());
    return kExitUsage;
  }
  json document;
  try {
    document = json::parse(in);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "noise-vectors: %s: cannot parse: %s\n", path.c_str(), e.what());
    return kExitUsage;
  }
  auto vectors = document.is_object() ? document.find("vectors") : document.end();
  if (vectors == document.end() || !vectors->is_array()) {
    std::fprintf(stderr, "noise-vectors: %s: no \"vectors\" array\n", path.c_str());
    return kExitUsage;
  }

  int passed = 0;
  int failed = 0;
  int skipped = 0;
  for (const json& vector : *vectors) {
    std::string name;
    if (vector.is_object()) {
      for (const char* key : {"protocol_name", "name"}) {
        auto it = vector.find(key);
        if (it != vector.end() && it->is_string()) {
          name = it->get<std::string>();
          break;
        }
      }
    }
    const std::optional<NoisePattern> pattern = implemented_pattern(name);
    if (!pattern) {
      ++skipped;
      continue;
    }
    if (auto why = unsupported_modifier(vector)) {
      std::printf("SKIP %s: %s\n", name.c_str(), why->c_str());
      ++skipped;
      continue;
    }
    Status st;
    try {
      st = run_vector(vector, *pattern);
    } catch (const std::exception& e) {  // a field of the wrong JSON type
      st = Status::invalid(std::string("malformed vector: ") + e.what());
    }
    if (st.is_ok()) {
      std::printf("PASS %s\n", name.c_str());
      ++passed;
    } else {
      std::printf("FAIL %s: %s\n", name.c_str(), st.to_string().c_str());
      ++failed;
    }
  }
  std::printf("noise-vectors: %d passed, %d failed, %d skipped\n", passed, failed, skipped);
  if (failed > 0) {
    return kExitFailed;
  }
  if (passed == 0) {
    std::printf("noise-vectors: no vector of an implemented protocol ran\n");
    return kExitFailed;
  }
  return kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {  // e.g. out of memory: report, never crash with a trace
    std::fprintf(stderr, "noise-vectors: unexpected error: %s\n", e.what());
    return kExitUsage;
  }
}
