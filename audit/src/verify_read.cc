// Stages 1 and 2 of the verifier (verifier.h), and reading the logs: the manifest's file list
// (digests computed by the workers of stage 3), balances.json, the roster chain, and each
// origin's log file split into frames.
#include <fstream>

#include "outpost/audit/bundle_format.h"
#include "outpost/base/limits.h"
#include "verifier.h"

namespace outpost::audit::internal {

// 1. Every listed file exists with the listed size and SHA-256. The manifest itself is not
// signed: these digests catch damage in transit; tampering is caught by the signatures. Here the
// list is parsed; the digests are computed by the workers (hash_file) and reported in this order
// by add_file_findings().
void Verifier::check_files() {
  std::uint64_t n = 0;
  for (const auto& f : manifest_["files"]) {
    FileCheck c;
    auto path = internal::json_string(f, "path", "manifest file entry");
    auto sha = internal::json_string(f, "sha256", "manifest file entry");
    if (!path.is_ok() || !sha.is_ok() || !f.contains("bytes") || !f["bytes"].is_number_unsigned()) {
      c.bad_entry = Finding{"manifest_mismatch",
                            "",
                            0,
                            "",
                            bundle::kManifestFile,
                            "a file entry lacks path, bytes or sha256: " + f.dump()};
      file_checks_.push_back(std::move(c));
      continue;
    }
    auto rel = internal::checked_relative_path(*path);
    if (!rel.is_ok()) {
      c.bad_entry =
          Finding{"manifest_mismatch", "", 0, "", bundle::kManifestFile, rel.status().message()};
      file_checks_.push_back(std::move(c));
      continue;
    }
    ++n;
    listed_files_[*rel] = {f["bytes"].get<std::uint64_t>(), *sha};
    c.rel = *rel;
    c.listed_bytes = f["bytes"].get<std::uint64_t>();
    c.listed_sha = *sha;
    file_checks_.push_back(std::move(c));
  }
  report_.counts["files"] = n;
}

// Computes one listed file's size and SHA-256, from the loaded copy or read in chunks. Touches
// only `f`: safe on a worker.
void Verifier::hash_file(FileCheck& f) const {
  if (f.bad_entry) return;
  crypto::Sha256 h;
  if (f.data != nullptr) {
    h.update(*f.data);
    f.bytes = f.data->size();
  } else {
    std::ifstream in(internal::bundle_path(dir_, f.rel), std::ios::binary);
    if (!in) {
      f.missing = true;
      return;
    }
    std::vector<char> buf(kHashChunkBytes);
    while (in) {
      in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
      const auto got = static_cast<std::size_t>(in.gcount());
      h.update(crypto::ByteView(reinterpret_cast<const std::uint8_t*>(buf.data()), got));
      f.bytes += got;
    }
  }
  f.sha = crypto::to_hex(h.finish());
}

// The file findings, in manifest order, ahead of every other finding (the files stage is first).
void Verifier::add_file_findings() {
  std::vector<Finding> out;
  for (FileCheck& f : file_checks_) {
    if (f.bad_entry) {
      out.push_back(*f.bad_entry);
    } else if (f.missing) {
      out.push_back(Finding{"file_missing", "", 0, "", f.rel,
                            "the manifest lists " + f.rel + " but it is missing"});
    } else if (f.bytes != f.listed_bytes || f.sha != f.listed_sha) {
      out.push_back(Finding{"file_hash_mismatch", "", 0, "", f.rel,
                            f.rel + " is " + std::to_string(f.bytes) + " bytes with SHA-256 " +
                                f.sha + "; the manifest lists " + std::to_string(f.listed_bytes) +
                                " bytes, " + f.listed_sha});
    }
  }
  report_.findings.insert(report_.findings.begin(), out.begin(), out.end());
  file_checks_.clear();
}

// Reads and parses balances.json (on a worker; check_balances() judges the result).
void Verifier::parse_balances() {
  balances_.done = true;
  auto data = read_whole_file(internal::bundle_path(dir_, bundle::kBalancesFile),
                              bundle::kJsonFileBytesMax);
  if (!data.is_ok()) {
    balances_.read = data.status();
    return;
  }
  try {
    balances_.doc = Json::parse(data->begin(), data->end());
  } catch (const std::exception& e) {
    balances_.error = e.what();
  }
}

// 2. The roster chain. Returns false when no version verifies under the root: nothing in the
// bundle can then be authenticated, and verification stops there.
bool Verifier::check_rosters() {
  const std::string file = bundle::kRostersFile;
  auto data = read_whole_file(internal::bundle_path(dir_, file), bundle::kBinaryFileBytesMax);
  if (!data.is_ok()) {
    if (!listed_files_.count(file)) add("file_missing", "", 0, "", file, data.status().message());
    return false;
  }
  std::size_t offset = 0;
  std::uint64_t read = 0, trusted = 0;
  while (offset < data->size()) {
    auto frame = sync::read_frame(*data, offset, limits::kRosterBytesMax);
    if (!frame.is_ok()) {
      add("malformed_file", "", 0, "", file,
          "at byte " + std::to_string(offset) + ": " + frame.status().message());
      break;
    }
    ++read;
    auto decoded = sync::decode_roster(frame->body);
    if (!decoded.is_ok()) {
      add("malformed_roster", "", 0, "", file,
          "roster #" + std::to_string(read) + ": " + decoded.status().message());
      continue;
    }
    const std::string what = "roster v" + std::to_string(decoded->version);
    auto verified = sync::verify_roster(frame->body, crypto::ByteView(frame->sig), opt_.root,
                                        decoded->network_id);
    if (!verified.is_ok()) {
      add("roster_signature", "", 0, "", file, what + ": " + verified.status().message());
      continue;
    }
    if (network_ && decoded->network_id != *network_) {
      add("roster_network", "", 0, "", file,
          what + " names network " + crypto::to_hex(decoded->network_id) + ", not " +
              crypto::to_hex(*network_));
      continue;
    }
    if (roster_) {
      Status st = sync::check_roster_successor(*roster_, verified->roster);
      if (!st.is_ok()) {
        add("roster_successor", "", 0, "", file,
            what + " may not follow v" + std::to_string(roster_->version) + ": " + st.message());
        continue;
      }
    }
    network_ = decoded->network_id;
    roster_ = std::move(verified->roster);
    std::set<NodeId>& nodes = roster_nodes_[roster_->version];
    for (const auto& sc : roster_->certificates) nodes.insert(sc.cert.node_id);
    ++trusted;
  }
  report_.counts["rosters"] = read;
  report_.counts["rosters_trusted"] = trusted;
  if (!roster_) return false;
  if (manifest_.contains("network_id") && manifest_["network_id"] != crypto::to_hex(*network_)) {
    add("manifest_mismatch", "", 0, "", bundle::kManifestFile,
        "the manifest names network " + manifest_["network_id"].dump() +
            " but the root-signed rosters name " + crypto::to_hex(*network_));
  }
  // Nodes are never dropped from a roster, so the newest trusted version holds every key and
  // every revocation.
  for (const auto& sc : roster_->certificates) keys_[sc.cert.node_id] = sc.cert.signing_key;
  report_.counts["roster_version"] = roster_->version;
  return true;
}

void Verifier::load_logs() {
  auto origins = internal::bundle_origins(dir_, manifest_);
  std::vector<OriginEntry> list =
      origins.is_ok() ? std::move(origins).value() : std::vector<OriginEntry>();
  if (!origins.is_ok()) {
    add("manifest_mismatch", "", 0, "", bundle::kManifestFile, origins.status().message());
  }
  for (auto& e : list) {
    if (!e.error.empty()) {
      // One malformed entry spoils its own origin only: the others are verified as usual, and
      // this origin is not reported again as missing (check_missing_origin).
      const bool named = e.origin != NodeId{};
      const bool loaded = named && by_origin_.count(e.origin) > 0;  // a second entry
      add("manifest_mismatch", named ? sync::id_hex(e.origin) : "", 0, "", bundle::kManifestFile,
          e.error + (loaded ? "" : "; this log is not verified"));
      if (loaded) continue;
      if (named) unreadable_origins_.insert(e.origin);
      taint_all_ = true;
      taint_all_reason_ = "a log the manifest announces could not be read: its members are unknown";
      continue;
    }
    auto log = std::make_unique<OriginLog>();
    log->hex = sync::id_hex(e.origin);
    log->entry = std::move(e);
    if (!log->entry.listed) {
      report_.notes.push_back(log->entry.file + " is not listed in the manifest; verified anyway");
    }
    auto data =
        read_whole_file(internal::bundle_path(dir_, log->entry.file), bundle::kBinaryFileBytesMax);
    if (!data.is_ok()) {
      log->file_broken = true;
      if (!listed_files_.count(log->entry.file)) {
        add("file_missing", log->hex, 0, "", log->entry.file, data.status().message());
      }
    } else {
      log->data = std::move(data).value();
    }
    std::size_t offset = 0;
    while (offset < log->data.size()) {
      const std::size_t at = offset;
      auto frame = sync::read_frame(log->data, offset, limits::kOpSignedBytesMax);
      if (!frame.is_ok()) {
        log->file_broken = true;
        add("malformed_file", log->hex, 0, "", log->entry.file,
            "at byte " + std::to_string(at) + ": " + frame.status().message() +
                "; the rest of the file is unreadable");
        break;
      }
      log->frames.emplace_back(at, static_cast<std::uint32_t>(frame->body.size()));
    }
    if (auto it = keys_.find(log->entry.origin); it != keys_.end()) log->key = it->second;
    if (const sync::Revocation* rev = roster_->revocation(log->entry.origin)) {
      log->cutoff = rev->after_seq;
    }
    by_origin_[log->entry.origin] = log.get();
    logs_.push_back(std::move(log));
  }
}

}  // namespace outpost::audit::internal
