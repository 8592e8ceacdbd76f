#include "bundle_io.h"

#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "outpost/audit/bundle_format.h"
#include "outpost/base/limits.h"
#include "outpost/sync/checkpoint.h"

namespace outpost::audit {

namespace fs = std::filesystem;

Result<std::vector<std::uint8_t>> read_whole_file(const std::string& path,
                                                  std::uint64_t max_bytes) {
  struct stat sb {};
  if (::stat(path.c_str(), &sb) != 0) return Status::not_found(path + " does not exist");
  if (!S_ISREG(sb.st_mode)) return Status::invalid(path + " is not a regular file");
  if (static_cast<std::uint64_t>(sb.st_size) > max_bytes) {
    return Status::invalid(path + " is larger than " + std::to_string(max_bytes) + " bytes");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::io_error("cannot open " + path);
  std::vector<std::uint8_t> data(static_cast<std::size_t>(sb.st_size));
  in.read(reinterpret_cast<char*>(data.data()), static_cast<std::streamsize>(data.size()));
  if (in.gcount() != static_cast<std::streamsize>(data.size())) {
    return Status::io_error("short read of " + path);
  }
  return data;
}

namespace internal {

Result<std::string> json_string(const Json& j, const char* key, const std::string& what) {
  if (!j.is_object() || !j.contains(key) || !j[key].is_string()) {
    return Status::invalid(what + ": missing string field '" + key + "'");
  }
  return j[key].get<std::string>();
}

Result<Json> read_manifest(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return Status::not_found(dir + " is not a directory");
  const std::string path = bundle_path(dir, bundle::kManifestFile);
  auto data = read_whole_file(path, bundle::kJsonFileBytesMax);
  if (!data.is_ok()) {
    if (data.status().code() == Code::kNotFound) {
      return Status::not_found(dir + " has no " + bundle::kManifestFile +
                               ": not an audit bundle");
    }
    return data.status();
  }
  Json m;
  try {
    m = Json::parse(data->begin(), data->end());
  } catch (const std::exception& e) {
    return Status::invalid(path + " is not JSON: " + e.what());
  }
  if (!m.is_object() || !m.contains("format") || m["format"] != bundle::kFormat) {
    return Status::invalid(path + " is not an " + bundle::kFormat + " manifest");
  }
  if (!m.contains("version") || !m["version"].is_number_integer()) {
    return Status::invalid(path + ": no version");
  }
  if (m["version"] != bundle::kVersion) {
    return Status::unsupported("bundle version " + m["version"].dump() +
                               " is not supported (this verifier reads version " +
                               std::to_string(bundle::kVersion) + ")");
  }
  for (const char* key : {"origins", "files"}) {
    if (!m.contains(key) || !m[key].is_array()) {
      return Status::invalid(path + ": '" + key + "' must be an array");
    }
  }
  if (m.contains("range") && !m["range"].is_null() && !m["range"].is_object()) {
    return Status::invalid(path + ": 'range' must be null or an object");
  }
  return m;
}

Result<std::string> checked_relative_path(const std::string& rel) {
  if (rel.empty() || rel.front() == '/' || rel.find('\\') != std::string::npos) {
    return Status::invalid("bad bundle path '" + rel + "'");
  }
  for (const auto& part : fs::path(rel)) {
    if (part == ".." || part == ".") return Status::invalid("bad bundle path '" + rel + "'");
  }
  return rel;
}

std::string bundle_path(const std::string& dir, const std::string& rel) {
  return (fs::path(dir) / rel).string();
}

namespace {

Result<std::uint64_t> json_u64(const Json& j, const char* key, const std::string& what) {
  if (!j.contains(key) || !j[key].is_number_unsigned()) {
    return Status::invalid(what + ": '" + key + "' must be an unsigned integer");
  }
  return j[key].get<std::uint64_t>();
}

// Parses one manifest origin entry into `e`; on an error, `e` keeps what was parsed before it
// (the origin, the file).
Status parse_origin(const Json& j, bool partial, OriginEntry& e) {
  const std::string what = "manifest origin entry";
  if (!j.is_object()) return Status::invalid(what + " is not an object");
  OUTPOST_ASSIGN_OR_RETURN(std::string hex, json_string(j, "origin", what));
  OUTPOST_ASSIGN_OR_RETURN(e.origin, hex_array<16>(hex, what + " origin"));
  OUTPOST_ASSIGN_OR_RETURN(std::string file, json_string(j, "file", what));
  OUTPOST_ASSIGN_OR_RETURN(e.file, checked_relative_path(file));
  if (j.contains("name") && j["name"].is_string()) e.name = j["name"].get<std::string>();
  if (!partial) return Status::ok();
  OUTPOST_ASSIGN_OR_RETURN(e.first_seq, json_u64(j, "first_seq", what));
  if (e.first_seq == 0) return Status::invalid(what + ": first_seq must be >= 1");
  if (!j.contains("prefix") || !j["prefix"].is_object()) {
    return Status::invalid(what + ": 'prefix' must be an object");
  }
  const Json& p = j["prefix"];
  OUTPOST_ASSIGN_OR_RETURN(e.prefix_size, json_u64(p, "size", what + " prefix"));
  if (e.prefix_size != e.first_seq - 1) {
    return Status::invalid(what + ": prefix size must be first_seq - 1");
  }
  if (!p.contains("frontier") || !p["frontier"].is_array() || p["frontier"].size() > 64) {
    return Status::invalid(what + ": prefix frontier must be an array of at most 64 hashes");
  }
  for (const auto& h : p["frontier"]) {
    if (!h.is_string()) return Status::invalid(what + ": frontier entries must be hex strings");
    OUTPOST_ASSIGN_OR_RETURN(auto hash, hex_array<32>(h.get<std::string>(), what + " frontier"));
    e.frontier.push_back(hash);
  }
  OUTPOST_ASSIGN_OR_RETURN(std::string prev, json_string(p, "prev_hash", what + " prefix"));
  OUTPOST_ASSIGN_OR_RETURN(e.prefix_prev, hex_array<32>(prev, what + " prefix prev_hash"));
  return Status::ok();
}

}  // namespace

Result<std::vector<OriginEntry>> bundle_origins(const std::string& dir, const Json& manifest) {
  const bool partial = manifest.contains("range") && manifest["range"].is_object();
  std::vector<OriginEntry> out;
  std::set<sync::NodeId> seen;
  std::set<std::string> files;
  for (const auto& j : manifest["origins"]) {
    OriginEntry e;
    if (Status st = parse_origin(j, partial, e); !st.is_ok()) {
      e.error = st.message();
    } else if (seen.count(e.origin)) {
      e.error = "the manifest lists origin " + sync::id_hex(e.origin) + " twice";
    }
    if (e.origin != sync::NodeId{}) seen.insert(e.origin);
    if (!e.file.empty()) files.insert(e.file);
    out.push_back(std::move(e));
  }
  std::error_code ec;
  const fs::path ops_dir = fs::path(dir) / bundle::kOpsDir;
  if (fs::is_directory(ops_dir, ec)) {
    std::vector<std::string> extra;
    for (const auto& it : fs::directory_iterator(ops_dir, ec)) {
      const std::string name = it.path().filename().string();
      const std::string rel = std::string(bundle::kOpsDir) + "/" + name;
      if (it.path().extension() != bundle::kOpsSuffix || files.count(rel)) continue;
      extra.push_back(name);
    }
    std::sort(extra.begin(), extra.end());
    for (const auto& name : extra) {
      auto id = sync::parse_id(name.substr(0, name.size() - std::string(bundle::kOpsSuffix).size()));
      if (!id.is_ok() || seen.count(*id)) continue;
      OriginEntry e;
      e.origin = *id;
      e.file = std::string(bundle::kOpsDir) + "/" + name;
      e.listed = false;
      seen.insert(*id);
      out.push_back(std::move(e));
    }
  }
  return out;
}

}  // namespace internal

Result<sync::MemberId> find_member(const std::string& dir, const std::string& id_or_card) {
  if (id_or_card.size() == 32) {
    auto id = sync::parse_id(id_or_card);
    if (id.is_ok()) return *id;
  }
  OUTPOST_ASSIGN_OR_RETURN(Json manifest, internal::read_manifest(dir));
  OUTPOST_ASSIGN_OR_RETURN(auto origins, internal::bundle_origins(dir, manifest));
  for (const auto& o : origins) {
    if (!o.error.empty()) continue;
    auto data = read_whole_file(internal::bundle_path(dir, o.file), bundle::kBinaryFileBytesMax);
    if (!data.is_ok()) continue;
    std::size_t offset = 0;
    while (offset < data->size()) {
      auto frame = sync::read_frame(*data, offset, limits::kOpSignedBytesMax);
      if (!frame.is_ok()) break;
      auto op = sync::decode_op(frame->body);
      if (!op.is_ok()) continue;
      for (const auto& f : op->fields) {
        if (f.field == sync::Field::kCard && f.value == id_or_card) return op->member;
      }
    }
  }
  return Status::not_found("no op in the bundle names member or card '" + id_or_card + "'");
}

}  // namespace outpost::audit
