// Stage 3 of the verifier (verifier.h): decoding and signatures, on `workers` threads, and the
// pipeline's fast path, which checks each log by the rule book's log rule and replays it while
// the workers verify (see the overview in verify.cc).
#include <algorithm>
#include <queue>
#include <thread>

#include "verifier.h"

namespace outpost::audit::internal {

namespace {

std::uint64_t raw_seq(sync::ByteView b) {
  if (b.size() < 30 || !std::equal(sync::kOpMagic.begin(), sync::kOpMagic.end(), b.begin())) {
    return 0;
  }
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= std::uint64_t{b[22 + static_cast<std::size_t>(i)]} << (8 * i);
  return v;
}

void check_op(OpEntry& e, const NodeId& file_origin,
              const std::map<NodeId, crypto::PublicKey>& keys) {
  e.hash = sync::op_hash(e.bytes, e.sig);
  e.leaf = sync::merkle_op_leaf_hash(e.bytes, e.sig);
  auto op = sync::decode_op(e.bytes);
  if (!op.is_ok()) {
    e.status = OpStatus::kMalformed;
    e.error = op.status().message();
    e.seq = raw_seq(e.bytes);
    return;
  }
  e.op = std::move(op).value();
  e.decoded = true;
  e.seq = e.op.seq;
  const sync::Bytes again = sync::encode_op(e.op);
  if (!std::equal(again.begin(), again.end(), e.bytes.begin(), e.bytes.end())) {
    e.status = OpStatus::kNonCanonical;
    return;
  }
  if (e.op.origin != file_origin) {
    e.status = OpStatus::kWrongOrigin;
    return;
  }
  auto it = keys.find(e.op.origin);
  if (it == keys.end()) {
    e.status = OpStatus::kUnknownOrigin;
    return;
  }
  e.status = crypto::verify(it->second, e.bytes, e.sig) ? OpStatus::kOk : OpStatus::kBadSignature;
}

}  // namespace

// The replay key of an op read straight from its signed bytes (fixed offsets of
// docs/op-format.md), before it is decoded or verified: the same values decoding gives. nullopt
// when the bytes are too short or lack the op magic.
std::optional<ReplayKey> raw_replay_key(sync::ByteView b) {
  if (b.size() < 74 || !std::equal(sync::kOpMagic.begin(), sync::kOpMagic.end(), b.begin())) {
    return std::nullopt;
  }
  auto le = [&](std::size_t at, int n) {
    std::uint64_t v = 0;
    for (int i = 0; i < n; ++i) v |= std::uint64_t{b[at + static_cast<std::size_t>(i)]} << (8 * i);
    return v;
  };
  ReplayKey k;
  std::copy_n(b.begin() + 6, 16, k.origin.begin());
  k.seq = le(22, 8);
  k.hlc.wall_ms = le(62, 8);
  k.hlc.logical = static_cast<std::uint32_t>(le(70, 4));
  return k;
}

// 3. Decoding and signatures. Workers take tasks from one list by an atomic index: first the file
// digests and balances.json, then the batches in replay order (by the HLC of their first op). Each
// batch fills its chunk of entries in place. Meanwhile this thread runs the fast path of stages 4
// and 6 on the batches as they complete (stream_checked_ops).
void Verifier::check_ops() {
  for (auto& log : logs_) {
    for (FileCheck& f : file_checks_) {
      if (!log->file_broken && f.rel == log->entry.file) f.data = &log->data;
    }
  }
  std::size_t nbatches = 0;
  std::uint64_t total = 0;
  for (auto& log : logs_) {
    log->chunks.resize((log->frames.size() + kBatchOps - 1) / kBatchOps);
    nbatches += log->chunks.size();
    total += log->frames.size();
  }
  std::vector<Batch> batches(nbatches);
  std::vector<std::pair<std::optional<ReplayKey>, Batch*>> by_key;
  by_key.reserve(nbatches);
  std::size_t k = 0;
  for (auto& log : logs_) {
    for (std::size_t c = 0; c < log->chunks.size(); ++c, ++k) {
      batches[k].log = log.get();
      batches[k].chunk = c;
      const auto [offset, len] = log->frames[c * kBatchOps];
      by_key.emplace_back(raw_replay_key(sync::ByteView(log->data.data() + offset + 4, len)),
                          &batches[k]);
    }
  }
  // Unreadable keys sort first (nullopt < any key): they stop the fast path early.
  std::stable_sort(by_key.begin(), by_key.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });

  const bool want_balances = !partial_;
  const std::size_t ntasks = file_checks_.size() + (want_balances ? 1 : 0) + nbatches;
  std::atomic<std::size_t> next{0};
  std::atomic<std::uint64_t> checked{0};
  // Runs the next task on the calling thread; false when every task is taken.
  auto run_task = [&] {
    std::size_t i = next.fetch_add(1);
    if (i >= ntasks) return false;
    if (i < file_checks_.size()) {
      hash_file(file_checks_[i]);
      return true;
    }
    i -= file_checks_.size();
    if (want_balances && i == 0) {
      parse_balances();
      return true;
    }
    Batch& b = *by_key[i - (want_balances ? 1 : 0)].second;
    check_batch(b);
    checked.fetch_add(b.log->chunks[b.chunk].size(), std::memory_order_relaxed);
    b.done.store(true, std::memory_order_release);
    b.done.notify_all();
    return true;
  };
  // `workers` threads in all: this one is a worker too whenever the fast path has nothing to do,
  // so the cores are never shared by more threads than there are.
  const unsigned workers = std::clamp(opt_.workers, 1u, kWorkersMax);
  std::vector<std::thread> threads;
  for (unsigned i = 1; i < workers; ++i) {
    threads.emplace_back([&] {
      while (run_task()) {
      }
    });
  }
  stream_checked_ops(batches, run_task, checked, total);
  while (run_task()) progress("signatures", checked.load(std::memory_order_relaxed), total);
  for (auto& t : threads) t.join();
  progress("signatures", total, total);

  std::uint64_t ok = 0;
  for (const auto& log : logs_) {
    for_each_entry(*log, [&](const OpEntry& e) { ok += e.status == OpStatus::kOk ? 1 : 0; });
  }
  report_.counts["ops"] = total;
  report_.counts["ops_signature_ok"] = ok;
}

// Fills the chunk of batch `b`: each op decoded, re-encoded, hashed, leaf-hashed and
// signature-checked. Touches only that chunk: safe on a worker.
void Verifier::check_batch(Batch& b) const {
  OriginLog& log = *b.log;
  std::vector<OpEntry>& chunk = log.chunks[b.chunk];
  const std::size_t first = b.chunk * kBatchOps;
  chunk.resize(std::min(kBatchOps, log.frames.size() - first));
  for (std::size_t k = 0; k < chunk.size(); ++k) {
    OpEntry& e = chunk[k];
    const auto [offset, len] = log.frames[first + k];
    e.offset = offset;
    e.bytes = sync::ByteView(log.data.data() + offset + 4, len);
    std::copy_n(log.data.data() + offset + 4 + len, 64, e.sig.begin());
    check_op(e, log.entry.origin, keys_);
  }
}

// The pipeline's fast path, on this thread while the workers check signatures: takes the ops in
// replay order (a merge of the origins' files by the key read from their bytes), waits for each
// op's batch (running other tasks meanwhile: `run_task`), accepts it into its log
// (accept_streamed) and replays it. Gives up, leaving the serial stages to do everything, at the
// first op the fast path cannot accept (or when it does not apply: a date-range bundle, an
// incomplete file, opt_.pipeline off).
void Verifier::stream_checked_ops(std::vector<Batch>& batches,
                                  const std::function<bool()>& run_task,
                                  const std::atomic<std::uint64_t>& checked, std::uint64_t total) {
  bool ok = opt_.pipeline && !partial_;
  for (const auto& log : logs_) ok = ok && !log->file_broken && log->entry.first_seq == 1;
  // Batches are laid out log after log, chunk after chunk (check_ops).
  std::vector<StreamState> state(logs_.size());
  for (std::size_t i = 0, first = 0; i < logs_.size(); first += logs_[i]->chunks.size(), ++i) {
    state[i].log = logs_[i].get();
    state[i].batches = batches.data() + first;
    state[i].request_ids.reserve(logs_[i]->frames.size());
  }
  using Item = std::pair<ReplayKey, StreamState*>;
  std::priority_queue<Item, std::vector<Item>, std::greater<>> heap;
  auto push_next = [&](StreamState& st) {
    if (st.next >= st.log->frames.size()) return true;
    const auto [offset, len] = st.log->frames[st.next];
    auto key = raw_replay_key(sync::ByteView(st.log->data.data() + offset + 4, len));
    if (!key) return false;
    heap.emplace(*key, &st);
    return true;
  };
  for (StreamState& st : state) ok = ok && push_next(st);
  std::uint64_t next_report = kProgressEveryOps;
  while (ok && !heap.empty()) {
    StreamState& st = *heap.top().second;
    heap.pop();
    Batch& b = st.batches[st.next / kBatchOps];
    while (!b.done.load(std::memory_order_acquire)) {
      if (!run_task()) b.done.wait(false, std::memory_order_acquire);
    }
    OriginLog& log = *st.log;
    const OpEntry& e = log.chunks[b.chunk][st.next % kBatchOps];
    ok = accept_streamed(log, st, e);
    if (ok) {
      auto applied = replica_.apply(e.op);
      ok = applied.is_ok();  // a refused op (counter overflow) is a finding: the serial path
      if (ok) after_apply(log, e.op, /*streamed=*/true);
    }
    ++st.next;
    ok = ok && push_next(st);
    const std::uint64_t done = checked.load(std::memory_order_relaxed);
    if (done >= next_report) {
      progress("signatures", done, total);
      next_report = done + kProgressEveryOps;
    }
  }
  streamed_ = ok;
  if (!ok) {
    // Undo the fast path's partial work; the serial stages start from nothing.
    for (auto& log : logs_) {
      log->chosen.clear();
      log->replay.clear();
      log->tree = sync::MerkleTree();
      log->max_seq = 0;
    }
    replica_ = sync::Replica();
    replayed_ = 0;
    report_.trace.clear();
    negative_samples_.clear();
  }
}

// Accepts the next entry of a log on the fast path if stage 4 would find nothing wrong with it:
// the log rule applies it (validly signed, the next seq, chained to the op before, not past a
// revocation cut-off), and it has a later HLC, a fresh request id and a sound reversal. Then it is
// chosen and replayed, like check_log() does. Returns false otherwise (the serial stages will
// report why). The fast path runs only on complete logs, which start at seq 1.
bool Verifier::accept_streamed(OriginLog& log, StreamState& st, const OpEntry& e) {
  if (e.status != OpStatus::kOk) return false;
  const Op& op = e.op;
  const sync::LogHead head{log.entry.first_seq - 1 + log.chosen.size(),
                           st.prev != nullptr ? st.prev->hash : Hash32{}};
  if (judge_entry(log, head, e).verdict != sync::LogVerdict::kApply) return false;
  if (st.prev != nullptr && op.hlc <= st.prev->op.hlc) return false;
  if (!op.request_id.empty() && !st.request_ids.insert(&e)) return false;
  if (op.kind == OpKind::kReverse && reversal_finding(log, e, st.reversed)) return false;
  log.chosen.push_back(&e);
  log.replay.push_back(&e);
  log.tree.append(e.leaf);
  log.max_seq = op.seq;
  st.prev = &e;
  return true;
}

// The finding a reversal makes, as (kind, reason), or nullopt. Records its target in `reversed`.

}  // namespace outpost::audit::internal
