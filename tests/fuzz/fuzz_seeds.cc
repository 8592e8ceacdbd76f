// Writes the seed corpora of the fuzz targets (tests/fuzz/corpus/NAME) from real encodings:
//   fuzz_seeds world OUT_DIR
//       the world's ops, sync messages, session scripts, documents, Merkle proofs, key files
//       (fuzz_world.h; deterministic: Ed25519 signatures are, so the files are the same each run)
//   fuzz_seeds bundle ROOT_HEX BUNDLE_DIR OUT_FILE [MEMBER [OP_REF]]
//       packs an exported audit bundle (`outpost export-audit`) as one bundle_fuzz input
//   fuzz_seeds proof ROOT_HEX PROOF_JSON OUT_FILE
//       prefixes an inclusion proof (`outpost-audit prove`) with its root key: a proof_fuzz input
// scripts/fuzz-seeds.sh runs both. Not a fuzz target: it links no libFuzzer.
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "bundle_archive.h"
#include "fuzz_world.h"
#include "outpost/sync/protocol.h"

namespace {

using namespace outpost;
namespace fs = std::filesystem;
using fuzz::Bytes;
using fuzz::ByteView;
using fuzz::World;

void write(const fs::path& path, ByteView bytes) {
  fs::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
  if (!out) {
    std::cerr << "fuzz_seeds: cannot write " << path << "\n";
    std::exit(1);
  }
}

Bytes concat(ByteView a, ByteView b) {
  Bytes out(a.begin(), a.end());
  out.insert(out.end(), b.begin(), b.end());
  return out;
}

Bytes framed(const sync::SignedOp& op) {
  sync::ByteWriter w;
  sync::write_signed_op(w, op);
  return w.take();
}

void op_seeds(const fs::path& dir) {
  const World& w = fuzz::world();
  for (const auto& op : w.nodes[1].log) {
    write(dir / sync::kind_name(op.op.kind), op.signed_bytes);
  }
  write(dir / "framed-enroll", framed(w.nodes[0].log.front()));
  write(dir / "framed-move", framed(w.nodes[2].log.back()));
  write(dir / "op-ref", fuzz::view(sync::op_ref_string(w.nodes[3].id, 7)));
}

sync::BlobMsg blob(sync::BlobKind kind, std::uint64_t version, const Bytes& body,
                   const crypto::Signature& sig) {
  sync::BlobMsg m;
  m.kind = kind;
  m.version = version;
  m.body = body;
  m.sig.assign(sig.begin(), sig.end());
  return m;
}

void message_seeds(const fs::path& dir) {
  const World& w = fuzz::world();
  sync::HelloMsg hello;
  hello.node = w.nodes[1].id;
  hello.roster_version = 1;
  hello.rules_version = 1;
  hello.wall_ms = fuzz::kNowMs;
  hello.vv = {{w.nodes[0].id, 3}, {w.nodes[1].id, 8}};
  hello.software_version = "0.1.0";
  hello.schema_version = 5;
  hello.tree_heads_version = 1;
  write(dir / "hello", sync::encode_message(hello));
  hello.software_version.clear();
  hello.schema_version = 0;
  hello.tree_heads_version = 0;
  Bytes short_hello = sync::encode_message(hello);
  short_hello.resize(short_hello.size() - 14);  // a HELLO of an earlier build: no tail
  write(dir / "hello-short", short_hello);
  sync::OpsMsg ops;
  ops.ops.assign(w.nodes[2].log.begin(), w.nodes[2].log.begin() + 4);
  write(dir / "ops", sync::encode_message(ops));
  sync::AckMsg ack;
  ack.vv = {{w.nodes[2].id, 4}};
  write(dir / "ack", sync::encode_message(ack));
  write(dir / "blob-roster",
        sync::encode_message(blob(sync::BlobKind::kRoster, 2, w.roster_v2.body, w.roster_v2.sig)));
  write(dir / "blob-rules",
        sync::encode_message(blob(sync::BlobKind::kRules, 1, w.rules.body, w.rules.sig)));
  write(dir / "blob-tree-heads", sync::encode_message(blob(sync::BlobKind::kTreeHeads, 1,
                                                           w.tree_heads.body, w.tree_heads.sig)));
  sync::RightsRequestMsg rq;
  rq.request_id = 7;
  rq.member = World::member_of(1);
  rq.account = sync::Account::kWallet;
  rq.amount = 250;
  write(dir / "rights-request", sync::encode_message(rq));
  sync::RightsReplyMsg reply;
  reply.request_id = 7;
  reply.granted = 125;
  reply.reason = "partly";
  write(dir / "rights-reply", sync::encode_message(reply));
  sync::ErrorMsg err;
  err.code = 4;
  err.message = "batch refused";
  write(dir / "error", sync::encode_message(err));
}

// Builds sync_session_fuzz scripts (the action bytes of Script::step there).
struct ScriptBytes {
  Bytes b;
  ScriptBytes(std::uint8_t self, std::uint8_t own_ops, std::uint8_t flags)
      : b{self, own_ops, flags} {}
  ScriptBytes& add(std::initializer_list<std::uint8_t> bytes) {
    b.insert(b.end(), bytes);
    return *this;
  }
  // HELLO from world node `who`, knowing `seqs` (mask bit i: node i), all documents at v1.
  ScriptBytes& hello(std::uint8_t who, std::uint8_t mask,
                     std::initializer_list<std::uint8_t> seqs) {
    add({1, who, mask}).add(seqs);
    return add({0x15, 0});
  }
  ScriptBytes& ops(std::uint8_t origin, std::uint8_t from, std::uint8_t count,
                   std::uint8_t flip = 0) {
    return add({2, origin, from, count, flip});
  }
  ScriptBytes& ack(std::uint8_t mask, std::initializer_list<std::uint8_t> seqs) {
    add({3, mask}).add(seqs);
    return add({0});
  }
  ScriptBytes& blob(std::uint8_t which) { return add({4, which, 0}); }
  ScriptBytes& rights(std::uint8_t id, std::uint8_t amount) {
    return add({5, id, 1, 0, amount, 0});
  }
  ScriptBytes& raw(ByteView bytes) {
    add({0, static_cast<std::uint8_t>(bytes.size()), static_cast<std::uint8_t>(bytes.size() >> 8)});
    b.insert(b.end(), bytes.begin(), bytes.end());
    return *this;
  }
};

void session_seeds(const fs::path& dir) {
  write(dir / "catch-up", ScriptBytes(0, 4, 0).hello(1, 0, {}).ops(1, 0, 8).ack(1, {4}).add({7}).b);
  write(dir / "peer-ahead", ScriptBytes(1, 8, 0)
                                .hello(2, 0b110, {3, 8})
                                .ops(2, 0, 8)
                                .blob(1)
                                .blob(2)
                                .blob(3)
                                .ack(0b10, {8})
                                .b);
  write(dir / "rights", ScriptBytes(2, 8, 0)
                            .hello(3, 0b1000, {8})
                            .rights(1, 10)
                            .rights(2, 7)
                            .add({6, 0, 5, 0})
                            .add({8, 0, 9})
                            .b);
  write(dir / "deferred-rights",
        ScriptBytes(2, 8, 1).hello(1, 0, {}).rights(3, 40).add({8, 1, 20}).b);
  write(dir / "gap", ScriptBytes(0, 8, 0).hello(1, 0, {}).ops(1, 2, 3).b);
  write(dir / "equivocation", ScriptBytes(1, 2, 0).hello(2, 0, {}).rights(1, 10).ops(1, 0, 3).b);
  const std::uint8_t junk[] = {2, 1, 0xff, 0xff, 0xff, 0xff};
  write(dir / "bad-message", ScriptBytes(0, 8, 0).hello(1, 0, {}).raw(junk).add({7}).b);
  write(dir / "peer-error", ScriptBytes(3, 8, 0).hello(0, 0, {}).add({6, 1, 2, 0}).ops(0, 0, 3).b);
  write(dir / "revoked", ScriptBytes(0, 8, 0).hello(3, 0, {}).blob(1).ops(3, 0, 4).b);
  write(dir / "flipped", ScriptBytes(0, 8, 0).hello(2, 0, {}).ops(2, 0, 4, 0x85).b);
}

void document_seeds(const fs::path& dir) {
  const World& w = fuzz::world();
  write(dir / "roster-v1", w.roster.body);
  write(dir / "roster-v2", w.roster_v2.body);
  write(dir / "certificate", w.nodes[1].certificate.body);
  sync::ByteWriter cert;
  sync::write_signed_certificate(cert, w.nodes[2].certificate);
  write(dir / "certificate-wire", cert.bytes());
  write(dir / "rules", w.rules.body);
  write(dir / "checkpoint", w.checkpoints[1].body);
  write(dir / "tree-heads", w.tree_heads.body);
  write(dir / "signed-roster-v2", concat(w.roster_v2.body, w.roster_v2.sig));
  write(dir / "signed-rules", concat(w.rules.body, w.rules.sig));
  write(dir / "signed-checkpoint", concat(w.checkpoints[2].body, w.checkpoints[2].sig));
  write(dir / "signed-tree-heads", concat(w.tree_heads.body, w.tree_heads.sig));
  sync::ByteWriter frames;  // a rosters.bin: every roster version, framed
  sync::write_frame(frames, w.roster.body, w.roster.sig);
  sync::write_frame(frames, w.roster_v2.body, w.roster_v2.sig);
  write(dir / "frames-rosters", frames.bytes());
}

void merkle_seeds(const fs::path& dir) {
  // Header bytes: leaf count - 1, leaf seed, leaf index, prefix size - 1; then a genuine proof.
  auto leaves_of = [](std::uint8_t count_minus_1, std::uint8_t seed) {
    std::vector<sync::Hash32> leaves;
    for (std::size_t i = 0; i <= count_minus_1; ++i) {
      const std::uint8_t in[3] = {seed, static_cast<std::uint8_t>(i),
                                  static_cast<std::uint8_t>(i >> 8)};
      leaves.push_back(sync::merkle_leaf_hash(ByteView(in, 3)));
    }
    return leaves;
  };
  auto seed = [&](const char* name, std::uint8_t n1, std::uint8_t s, std::uint8_t idx,
                  std::uint8_t m1, const std::vector<sync::Hash32>& proof) {
    Bytes b = {n1, s, idx, m1};
    for (const auto& h : proof) b.insert(b.end(), h.begin(), h.end());
    write(dir / name, b);
  };
  const auto leaves = leaves_of(12, 3);  // 13 leaves
  const sync::MerkleTree tree(leaves);
  seed("inclusion-4-of-11", 12, 3, 4, 10, tree.inclusion_proof(4, 11));
  seed("consistency-6-to-13", 12, 3, 0, 5, tree.consistency_proof(6, 13));
  seed("consistency-8-to-13", 12, 3, 0, 7, tree.consistency_proof(8, 13));
  seed("single-leaf", 0, 9, 0, 0, {});
  sync::MerkleAccumulator acc;
  for (std::size_t i = 0; i < 11; ++i) acc.append(leaves[i]);
  Bytes frontier = {12, 3, 1, 12, 11, 0, 0, 0, 0, 0, 0, 0};  // then a frontier of 11 leaves
  for (const auto& h : acc.frontier()) frontier.insert(frontier.end(), h.begin(), h.end());
  write(dir / "frontier-11", frontier);
}

void key_file_seeds(const fs::path& dir) {
  const World& w = fuzz::world();
  fs::create_directories(dir);
  for (const char* name : {"ed25519-seed", "x25519-private", "root-ed25519-seed"}) {
    fs::remove(dir / name);
  }
  auto ok = [](const Status& st) {
    if (!st.is_ok()) {
      std::cerr << "fuzz_seeds: " << st.to_string() << "\n";
      std::exit(1);
    }
  };
  ok(crypto::write_signing_key(dir / "ed25519-seed", *w.nodes[1].key));
  const auto noise = fuzz::run_from<32>(0x60);
  ok(crypto::write_key_file(dir / "x25519-private", "x25519-private", noise));
  ok(crypto::write_key_file(dir / "root-ed25519-seed", "root-ed25519-seed", w.root->seed()));
  write(dir / "root-hex", fuzz::view(crypto::to_hex(w.root->public_key()) + "\n"));
}

Result<std::array<std::uint8_t, 32>> root_of(const char* hex) {
  auto root = crypto::from_hex(hex);
  if (!root.is_ok() || root->size() != 32) return Status::invalid("ROOT_HEX must be 64 hex digits");
  std::array<std::uint8_t, 32> out{};
  std::copy(root->begin(), root->end(), out.begin());
  return out;
}

int pack_proof(int argc, char** argv) {
  auto root = argc == 5 ? root_of(argv[2]) : Status::invalid("usage");
  if (!root.is_ok()) {
    std::cerr << "usage: fuzz_seeds proof ROOT_HEX PROOF_JSON OUT_FILE\n";
    return 2;
  }
  std::ifstream in(argv[3], std::ios::binary);
  const std::string json((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  write(argv[4], concat(*root, fuzz::view(json)));
  return 0;
}

int pack_bundle(int argc, char** argv) {
  if (argc < 5) {
    std::cerr << "usage: fuzz_seeds bundle ROOT_HEX BUNDLE_DIR OUT_FILE [MEMBER [OP_REF]]\n";
    return 2;
  }
  fuzz::Archive a;
  auto root = root_of(argv[2]);
  if (!root.is_ok()) {
    std::cerr << "fuzz_seeds: ROOT_HEX must be 64 hex digits\n";
    return 2;
  }
  a.root = *root;
  const fs::path bundle = argv[3];
  std::vector<fs::path> files;
  for (const auto& it : fs::recursive_directory_iterator(bundle)) {
    if (it.is_regular_file()) files.push_back(it.path());
  }
  std::sort(files.begin(), files.end());
  for (const auto& f : files) {
    std::ifstream in(f, std::ios::binary);
    const std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    a.entries.push_back({fs::relative(f, bundle).string(), Bytes(data.begin(), data.end())});
  }
  if (argc > 5) a.entries.push_back({"@member", Bytes(argv[5], argv[5] + std::strlen(argv[5]))});
  if (argc > 6) a.entries.push_back({"@prove", Bytes(argv[6], argv[6] + std::strlen(argv[6]))});
  write(argv[4], fuzz::pack_archive(a));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "bundle") return pack_bundle(argc, argv);
  if (mode == "proof") return pack_proof(argc, argv);
  if (mode != "world" || argc != 3) {
    std::cerr << "usage: fuzz_seeds world OUT_DIR | fuzz_seeds bundle ROOT_HEX BUNDLE_DIR "
                 "OUT_FILE [MEMBER [OP_REF]] | fuzz_seeds proof ROOT_HEX PROOF_JSON OUT_FILE\n";
    return 2;
  }
  const fs::path out = argv[2];
  op_seeds(out / "op");
  message_seeds(out / "sync_message");
  session_seeds(out / "sync_session");
  document_seeds(out / "documents");
  merkle_seeds(out / "merkle");
  key_file_seeds(out / "key_file");
  return 0;
}
