// Small helpers shared by Outpost's tests: a temporary directory removed when the test ends,
// whole-file read/write, and a text dump of every row of a SQLite database (to assert that a
// refused or bad request left the database unchanged). Header-only; each object is owned by one
// test thread.
#pragma once

#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace outpost::test {

// A fresh directory under $TMPDIR (or /tmp), removed with everything in it on destruction.
// Permissions are restored before removal so a test may chmod files or subdirectories.
class TempDir {
 public:
  explicit TempDir(std::string_view prefix = "outpost-test") {
    const char* base = std::getenv("TMPDIR");
    std::string tmpl =
        std::string(base && *base ? base : "/tmp") + "/" + std::string(prefix) + "-XXXXXX";
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    if (::mkdtemp(buf.data()) == nullptr) throw std::runtime_error("mkdtemp failed for " + tmpl);
    path_ = buf.data();
  }
  ~TempDir() {
    std::error_code ec;
    // Undo any chmod a test made, so the removal cannot fail on permissions when not root.
    for (auto it = std::filesystem::recursive_directory_iterator(
             path_, std::filesystem::directory_options::skip_permission_denied, ec);
         !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
      ::chmod(it->path().c_str(), it->is_directory(ec) ? 0700 : 0600);
    }
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  // Returns the path of `name` inside this directory (nothing is created).
  std::string file(std::string_view name) const { return path_ + "/" + std::string(name); }

 private:
  std::string path_;
};

// Returns the whole content of `path`, or an empty string if it cannot be read.
inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Replaces the content of `path` with `data` (creating it with the process umask).
inline void write_file(const std::string& path, std::string_view data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(data.data(), static_cast<std::streamsize>(data.size()));
}

// Returns the permission bits of `path` (e.g. 0600), or -1 if it does not exist.
inline int file_mode(const std::string& path) {
  struct stat sb {};
  if (::stat(path.c_str(), &sb) != 0) return -1;
  return static_cast<int>(sb.st_mode & 07777);
}

// Returns every row of every table of the SQLite database at `path`, plus its user_version and
// application_id, as sorted text lines; "" on any error. Opened read-only, so it changes
// nothing a later check could see. Two equal dumps mean the same logical database content.
inline std::string dump_sqlite(const std::string& path) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    sqlite3_close(db);
    return "";
  }
  auto query = [&](const std::string& sql, std::vector<std::string>& rows) {
    sqlite3_stmt* s = nullptr;
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &s, nullptr) != SQLITE_OK) return false;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
      std::ostringstream row;
      for (int c = 0; c < sqlite3_column_count(s); ++c) {
        row << (c ? "|" : "");
        switch (sqlite3_column_type(s, c)) {
          case SQLITE_NULL:
            row << "NULL";
            break;
          case SQLITE_INTEGER:
            row << sqlite3_column_int64(s, c);
            break;
          case SQLITE_BLOB: {
            const auto* p = static_cast<const unsigned char*>(sqlite3_column_blob(s, c));
            row << "x'";
            for (int i = 0; i < sqlite3_column_bytes(s, c); ++i) {
              static const char* kHex = "0123456789abcdef";
              row << kHex[p[i] >> 4] << kHex[p[i] & 0xf];
            }
            row << "'";
            break;
          }
          default: {
            const unsigned char* t = sqlite3_column_text(s, c);
            row << "'" << (t ? reinterpret_cast<const char*>(t) : "") << "'";
          }
        }
      }
      rows.push_back(row.str());
    }
    sqlite3_finalize(s);
    return rc == SQLITE_DONE;
  };
  std::vector<std::string> tables;
  std::string out;
  bool ok = query("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name", tables);
  std::vector<std::string> header;
  ok = ok && query("PRAGMA user_version", header) && query("PRAGMA application_id", header);
  for (const auto& h : header) out += "pragma " + h + "\n";
  for (std::string t : tables) {
    t = t.substr(1, t.size() - 2);  // strip the quotes added by the dump
    std::vector<std::string> rows;
    ok = ok && query("SELECT * FROM \"" + t + "\"", rows);
    std::sort(rows.begin(), rows.end());
    out += "table " + t + " (" + std::to_string(rows.size()) + " rows)\n";
    for (const auto& r : rows) out += "  " + r + "\n";
  }
  sqlite3_close(db);
  return ok ? out : "";
}

}  // namespace outpost::test
