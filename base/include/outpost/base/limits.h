// Every bound Outpost enforces, in one place, each with the reason for its value
// (TigerStyle: put a limit on everything). Header-only constants; safe from any thread.
#pragma once

#include <cstddef>
#include <cstdint>

namespace outpost::limits {

// Largest single amount (points or minor currency units) one op may carry: 10^12 minor units is
// ten billion in a two-decimal currency, far beyond any retail transaction, and keeps the sum of
// 2^20 such ops far inside int64.
inline constexpr std::uint64_t kAmountMax = 1'000'000'000'000ULL;
// Largest running total any counter entry may reach; ops that would pass it are refused
// instead of overflowing.
inline constexpr std::uint64_t kCounterMax = (std::uint64_t{1} << 62);
static_assert(kAmountMax < kCounterMax);

// Byte-string fields inside an op (request_id, receipt, profile values). Bounded so a peer cannot
// make us allocate from a length it chose.
inline constexpr std::size_t kRequestIdBytesMax = 64;
inline constexpr std::size_t kReceiptBytesMax = 128;
inline constexpr std::size_t kFieldValueBytesMax = 128;
inline constexpr std::size_t kFieldsPerOpMax = 16;
// Upper bound of one encoded op (signed bytes): fixed part + all variable fields at their maxima.
inline constexpr std::size_t kOpSignedBytesMax = 4096;
static_assert(kRequestIdBytesMax + kReceiptBytesMax + kFieldsPerOpMax * (3 + kFieldValueBytesMax) +
                  256 < kOpSignedBytesMax);

// Names and card numbers shown to cashiers.
inline constexpr std::size_t kNameBytesMax = 100;
inline constexpr std::size_t kCardDigitsMin = 8;
inline constexpr std::size_t kCardDigitsMax = 19;  // ISO/IEC 7812 PAN length
inline constexpr std::size_t kPhoneDigitsMin = 6;
inline constexpr std::size_t kPhoneDigitsMax = 15;  // E.164

// Member PIN lockout (docs/api.md, "PIN"): this many wrong PINs since the last right one, the
// newest of them less than kPinLockoutMs ago, lock the member's wallet spends chain-wide. Five
// guesses per quarter hour leave a 4-digit PIN's 10^4 space beyond reach in any one day.
inline constexpr std::size_t kPinFailuresMax = 5;
inline constexpr std::uint64_t kPinLockoutMs = 15 * 60 * 1000;

// History listings return at most this many ops per call.
inline constexpr std::size_t kHistoryRowsMax = 1000;

// SQLite busy timeout: a second writer (CLI while the daemon runs) waits this long for the lock.
inline constexpr int kSqliteBusyTimeoutMs = 5000;
// WAL pages after which a commit copies the WAL back into the database file (a checkpoint: the
// pages written since, then an fsync of the database). An op dirties 6-9 pages spread over
// several B-trees, so SQLite's default of 1000 meant a checkpoint every ~100 ops; checkpoint I/O
// then cost about a quarter of the 64-client throughput on a slow-fsync disk (bench_api). At
// 4 KiB pages the WAL stays below ~40 MiB between checkpoints.
inline constexpr int kSqliteWalAutocheckpointPages = 10000;
// Prepared statements a connection keeps for reuse (idle ones, all SQL texts together): the
// store's hot paths use a few dozen distinct statements; parsing SQL dominated an op's CPU cost.
inline constexpr std::size_t kSqliteStatementCacheMax = 128;

// Key files are tiny; refuse anything larger before reading it.
inline constexpr std::size_t kKeyFileBytesMax = 4096;

// Noise: the spec's maximum message length, and the nonce after which a cipher must rekey/close.
inline constexpr std::size_t kNoiseMessageBytesMax = 65535;
inline constexpr std::uint64_t kNoiseRekeyAfterMessages = 1ULL << 20;

// Application messages over a link may span several Noise frames; bound the reassembled size.
inline constexpr std::size_t kLinkMessageBytesMax = 4 * 1024 * 1024;

// Identity (docs/roster-format.md). A certificate is ~120 fixed bytes plus the node name; the
// bound leaves room for the name at its maximum and rejects anything a peer inflates.
inline constexpr std::size_t kCertificateBytesMax = 256;
// Certificates and revocations in one roster: one per node, and a chain has at most
// kRosterNodesMax nodes (the same bound as origins in a version vector, declared below).
inline constexpr std::size_t kRosterNodesMax = 4096;
// One encoded roster: header + every certificate (u16 length, body, 64-byte signature) + every
// revocation (16 + 8 bytes), all at their maxima, rounded up. It must travel as one link message.
inline constexpr std::size_t kRosterBytesMax = 2 * 1024 * 1024;
// A signed program-rules document (docs/program-rules.md): 46 fixed bytes + at most 16 tiers of
// at most 1 + 32 + 16 bytes = 830 bytes; 1 KiB bounds what a peer can make a node read.
inline constexpr std::size_t kRulesTiersMax = 16;
inline constexpr std::size_t kTierNameBytesMax = 32;
inline constexpr std::size_t kRulesBytesMax = 1024;
static_assert(46 + kRulesTiersMax * (1 + kTierNameBytesMax + 16) <= kRulesBytesMax);
static_assert(64 + kRosterNodesMax * (2 + kCertificateBytesMax + 64) + kRosterNodesMax * 24 <=
              kRosterBytesMax);
static_assert(kRosterBytesMax + 64 * 1024 < kLinkMessageBytesMax,
              "a roster must fit in one link message");
// Certificate validity chosen by `outpost hq enroll --valid-days` (and `hq init`): at most ten
// years, so a forgotten device cannot stay trusted forever.
inline constexpr std::uint32_t kCertificateValidDaysMax = 3660;

// Links (docs/security.md). A handshake payload is the certificate, its signature and a roster
// version; its Noise message adds at most 96 bytes (e, encrypted s, tag). Frames above these
// bounds are refused from their 2-byte length, before any byte of the body is read.
inline constexpr std::size_t kLinkHandshakePayloadBytesMax = 512;
inline constexpr std::size_t kLinkHandshakeFrameBytesMax = kLinkHandshakePayloadBytesMax + 128;
static_assert(8 + 2 + kCertificateBytesMax + 64 + 8 <= kLinkHandshakePayloadBytesMax);
// A link that has not finished its handshake within this time is dropped (slowloris).
inline constexpr int kLinkHandshakeTimeoutMs = 10'000;
// A link that receives nothing (not even a keepalive ping) for this long is dead; a write that
// makes no progress for this long means the peer stopped reading.
inline constexpr int kLinkIdleTimeoutMs = 30'000;
// Each side sends a ping after this much send silence: three pings fit in one idle timeout.
inline constexpr int kLinkKeepaliveMs = 10'000;
static_assert(3 * kLinkKeepaliveMs <= kLinkIdleTimeoutMs);
// Encrypted bytes queued for one link before send() refuses (the sync layer's flow control keeps
// far below this; a peer that stops reading cannot make us buffer without bound).
inline constexpr std::size_t kLinkSendQueueBytesMax = 4 * kLinkMessageBytesMax;
// Inbound connections allowed to be in their handshake at once; more are closed at accept.
// Before its handshake a connection is anonymous, so these slots are what a flood of silent
// connections aims at (each holds a slot for kLinkHandshakeTimeoutMs); the two bounds below
// keep one source, or many unknown ones, from taking all of them (docs/security.md).
inline constexpr std::size_t kLinkHandshakesInFlightMax = 64;
// In-flight handshakes from one source address (an IPv6 source counts by its /64, which one
// host usually owns whole). An honest node dials a peer once at a time and redials only after
// the previous attempt ended, so a few cover several nodes behind one NAT address; a flood from
// one address then holds at most these and every other address still gets in.
inline constexpr std::size_t kLinkHandshakesPerSourceMax = 4;
// Slots that only addresses which completed a handshake on this listener before may take: a
// flood spread over many addresses still leaves these for the peers this node already knows.
inline constexpr std::size_t kLinkHandshakesReservedForKnown = 16;
// Addresses remembered as known (at most one per enrolled node is needed; the oldest go first).
inline constexpr std::size_t kLinkKnownAddressesMax = kRosterNodesMax;
static_assert(kLinkHandshakesReservedForKnown + 8 * kLinkHandshakesPerSourceMax <=
                  kLinkHandshakesInFlightMax,
              "unknown sources must share the unreserved slots among at least 8 addresses");
static_assert(kLinkHandshakesReservedForKnown >= 4 * kLinkHandshakesPerSourceMax,
              "the reserve must admit several known peers at once");
// Close reasons carried in a CLOSE frame (longer ones are cut).
inline constexpr std::size_t kLinkCloseReasonBytesMax = 200;

// Sync protocol: ops per OPS message and their encoded bytes, batches in flight before an ACK
// (flow control), and origins in one version vector (a chain has at most this many nodes).
inline constexpr std::size_t kSyncBatchOpsMax = 256;
inline constexpr std::size_t kSyncBatchBytesMax = 1024 * 1024;
inline constexpr std::size_t kSyncWindowBatches = 4;
inline constexpr std::size_t kOriginsMax = 4096;
static_assert(kSyncBatchBytesMax + 64 * 1024 < kLinkMessageBytesMax,
              "an OPS message must fit in one link message");
static_assert(kSyncBatchOpsMax * (kOpSignedBytesMax + 68) <= 4 * kSyncBatchBytesMax);

static_assert(kRosterNodesMax == kOriginsMax, "every origin is a roster node, and vice versa");

// Alerts a node reports to HQ (ALERTS, docs/sync-protocol.md "Alerts"). One message carries at
// most 64 alerts (about 40 KiB at every bound), one at a time per link until HQ acknowledges it;
// a kind is a short snake_case word, a message one line of text. Ids fit SQLite's int64.
inline constexpr std::size_t kSyncAlertsPerMessageMax = 64;
inline constexpr std::size_t kAlertKindBytesMax = 32;
inline constexpr std::size_t kAlertMessageBytesMax = 512;
inline constexpr std::uint64_t kAlertIdMax = std::uint64_t{1} << 62;
static_assert(kSyncAlertsPerMessageMax * (8 + 8 + 2 + kAlertKindBytesMax + 17 + 2 + kAlertMessageBytesMax) +
                  64 < kLinkMessageBytesMax);
// HQ keeps the newest this many alerts of each reporting node: a node that floods alerts only
// pushes out its own, never another store's.
inline constexpr std::size_t kPeerAlertsPerSourceMax = 500;
// A node's last contact with each live peer is written to its database at most this often (and
// at every link up and down), so that a restart still shows when each peer was last heard from.
inline constexpr std::uint64_t kPeerContactPersistIntervalMs = 60'000;

// Rights broker (docs/sync-protocol.md, "Rights broker"). A local request waits this long in all
// for holders to answer (a cashier is waiting); a node relaying a peer's request (HQ) gathers
// from other holders for at most the relay time, so its answer can still reach the requester.
inline constexpr std::uint64_t kRightsRequestTimeoutMs = 3'000;
inline constexpr std::uint64_t kRightsRelayTimeoutMs = 1'500;
static_assert(kRightsRelayTimeoutMs < kRightsRequestTimeoutMs,
              "a relay must answer before the requester gives up");
// Local requests waiting at once (each is a POS request on hold); more are refused at once.
inline constexpr std::size_t kBrokerRequestsMax = 1024;
// Requests of one peer in service at once; an honest peer has at most one per waiting spend, so
// this only stops a peer from making this node keep unbounded state (the rest are answered 0).
inline constexpr std::size_t kBrokerServedPerLinkMax = 64;

// HTTP: request bodies above this are refused with 413 before parsing.
inline constexpr std::size_t kHttpBodyBytesMax = 64 * 1024;
inline constexpr int kHttpReadTimeoutMs = 10'000;
// Bearer tokens the database confirmed are remembered in memory (by SHA-256, as in the database;
// never the token) so that a request costs no query on the ledger worker. An entry is trusted
// for this long at most: a terminal removed from the database by another process stops working
// within this time. Entries beyond the bound evict the oldest (a store has a few terminals).
inline constexpr std::uint64_t kTokenCacheTtlMs = 60'000;
inline constexpr std::size_t kTokenCacheEntriesMax = 64;
// Member PIN checks (Argon2id, 64 MiB and ~0.1-0.2 s of one core each) run on their own thread,
// never on the ledger worker; at most this many wait for it, beyond that a PIN spend gets 503.
inline constexpr std::size_t kPinChecksQueuedMax = 32;
// A PIN spend whose member's PIN changed while its PIN was being checked is checked again
// against the new PIN, at most this many times in all (then 503, retry).
inline constexpr int kPinCheckAttemptsMax = 3;

}  // namespace outpost::limits
