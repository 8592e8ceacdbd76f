// The input format of bundle_fuzz: an audit bundle (docs/audit-bundle.md) packed as one byte
// string, so libFuzzer can mutate a whole bundle directory. Shared by the target, which unpacks
// each input into a scratch directory, and by fuzz_seeds, which packs real exported bundles.
//   root key   32 bytes: the root public key the bundle is verified against
//   entries    until the input ends, each:
//     name     u8 code: below 0x80 one of kArchiveNames; otherwise a u8 length and that many
//              bytes of a bundle-relative path (at most two parts; "", ".", ".." and "/" parts
//              are dropped, so nothing is written outside the scratch directory)
//     content  u32 LE length (cut to what is left of the input), then the bytes
// Entries named "@member" and "@prove" are not files: they carry the argument of find_member
// (a member id or card) and of prove_inclusion ("ORIGINHEX:SEQ"). Header-only.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "outpost/sync/bytes.h"

namespace outpost::fuzz {

inline constexpr std::array<const char*, 9> kArchiveNames = {
    "manifest.json", "rosters.bin", "checkpoints.bin", "tree_heads.bin", "equivocations.bin",
    "balances.json", "ops.jsonl",   "@member",         "@prove"};

struct ArchiveEntry {
  std::string name;
  sync::Bytes content;
};

struct Archive {
  std::array<std::uint8_t, 32> root{};
  std::vector<ArchiveEntry> entries;
};

// Keeps the safe parts of a relative path: at most two, none empty, "." or "..".
inline std::string safe_relative_path(const std::string& raw) {
  std::string out, part;
  int parts = 0;
  auto flush = [&] {
    if (!part.empty() && part != "." && part != ".." && parts < 2) {
      out += (out.empty() ? "" : "/") + part;
      ++parts;
    }
    part.clear();
  };
  for (char c : raw) {
    if (c == '/') {
      flush();
    } else if (c != '\0') {
      part += c;
    }
  }
  flush();
  return out;
}

// Reads as many whole entries as the input holds; nullopt without a root key.
inline std::optional<Archive> unpack_archive(sync::ByteView input) {
  sync::ByteReader r(input);
  Archive a;
  if (!r.raw(a.root)) return std::nullopt;
  for (std::size_t n = 0; n < 64 && r.remaining() > 0; ++n) {
    std::uint8_t code = 0;
    if (!r.u8(code)) break;
    ArchiveEntry e;
    if (code < 0x80) {
      e.name = kArchiveNames[code % kArchiveNames.size()];
    } else {
      std::uint8_t len = 0;
      if (!r.u8(len)) break;
      std::string raw(std::min<std::size_t>(len, r.remaining()), '\0');
      if (!r.raw(std::span(reinterpret_cast<std::uint8_t*>(raw.data()), raw.size()))) break;
      e.name = safe_relative_path(raw);
    }
    std::uint32_t size = 0;
    if (!r.u32(size)) break;
    e.content.resize(std::min<std::size_t>(size, r.remaining()));
    if (!r.raw(e.content)) break;
    if (!e.name.empty()) a.entries.push_back(std::move(e));
  }
  return a;
}

inline sync::Bytes pack_archive(const Archive& a) {
  sync::ByteWriter w;
  w.raw(a.root);
  for (const auto& e : a.entries) {
    std::size_t code = 0;
    while (code < kArchiveNames.size() && e.name != kArchiveNames[code]) ++code;
    if (code < kArchiveNames.size()) {
      w.u8(static_cast<std::uint8_t>(code));
    } else {
      w.u8(0x80);
      w.u8(static_cast<std::uint8_t>(e.name.size()));
      w.raw(sync::ByteView(reinterpret_cast<const std::uint8_t*>(e.name.data()), e.name.size()));
    }
    w.u32(static_cast<std::uint32_t>(e.content.size()));
    w.raw(e.content);
  }
  return w.take();
}

}  // namespace outpost::fuzz
