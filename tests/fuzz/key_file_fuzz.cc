// libFuzzer target for the key file reader (crypto/crypto.h: read_key_file, read_signing_key)
// and the root key argument of outpost-audit (audit/verify.h: parse_root_key). The input is
// written to a scratch file of mode 0600 and read as each kind of key a node keeps (signing seed,
// Noise private key, HQ root seed). On success the secret is the right length for its kind and
// writing it back with write_key_file gives the input again, up to the case of its hex digits
// (the only freedom the format has). parse_root_key gets the input both as text and as a file.
// Any crash, sanitizer report or broken invariant (FUZZ_CHECK) is a finding.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "fuzz_world.h"
#include "outpost/audit/verify.h"
#include "outpost/crypto/crypto.h"

namespace {

using namespace outpost;
namespace fs = std::filesystem;

// The key kinds a node's data dir holds (docs/security.md).
constexpr const char* kKinds[] = {"ed25519-seed", "x25519-private", "root-ed25519-seed"};

const std::string& scratch() {
  static const std::string* dir = [] {
    const char* base = std::getenv("TMPDIR");
    std::string tmpl = std::string(base && *base ? base : "/tmp") + "/outpost-key-fuzz-XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) std::abort();
    std::atexit([] {
      std::error_code ec;
      fs::remove_all(scratch(), ec);
    });
    return new std::string(tmpl);
  }();
  return *dir;
}

std::string write_scratch(const std::string& name, const std::string& text) {
  const std::string path = scratch() + "/" + name;
  std::error_code ec;
  fs::remove(path, ec);
  {
    std::ofstream out(path, std::ios::binary);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
  }
  ::chmod(path.c_str(), 0600);
  return path;
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

void check_round_trip(const std::string& input, const char* kind, const crypto::SecretBytes& key) {
  const std::string again = scratch() + "/again";
  std::error_code ec;
  fs::remove(again, ec);
  FUZZ_CHECK(crypto::write_key_file(again, kind, key.view()).is_ok());
  std::ifstream in(again, std::ios::binary);
  const std::string written((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  FUZZ_CHECK(lower(written) == lower(input));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes, std::size_t size) {
  static const bool ready = crypto::init().is_ok();
  FUZZ_CHECK(ready);
  const std::string input(reinterpret_cast<const char*>(bytes), size);
  const std::string path = write_scratch("key", input);
  for (const char* kind : kKinds) {
    auto key = crypto::read_key_file(path, kind);
    if (key.is_ok()) check_round_trip(input, kind, *key);
  }
  auto signing = crypto::read_signing_key(path);
  if (signing.is_ok()) FUZZ_CHECK(signing->seed().size() == 32);
  // As text only when it could be the 64 hex digits (anything else is taken for a path).
  auto root_file = audit::parse_root_key(path);
  if (size == 64) {
    auto root = audit::parse_root_key(input);
    if (root.is_ok()) FUZZ_CHECK(root_file.is_ok() && *root == *root_file);
  }
  return 0;
}
