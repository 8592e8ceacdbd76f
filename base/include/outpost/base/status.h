// Status and Result<T>: how every Outpost module reports success and failure.
// Lives in the lowest layer (base/) so that all modules share it. Value types; thread-compatible.
// Exceptions from third-party libraries are caught at the boundary that reads bytes and become a
// Status; nothing in the core throws across module boundaries.
#pragma once

#include <cstdlib>
#include <iostream>
#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace outpost {

enum class Code {
  kOk = 0,
  kInvalidArgument,  // bad input from a caller: CLI, API, wire, file. Nothing changed.
  kNotFound,         // the named member, op or file does not exist.
  kRefused,          // a business rule refused the request (rights, double reversal, lockout).
  kCorruption,       // stored or received bytes fail verification (signature, chain, format).
  kIoError,          // the OS or SQLite failed an operation.
  kUnsupported,      // a newer version or unknown format than this binary understands.
  kPermission,       // authentication or file-permission failure.
  kUnavailable,      // a peer or service could not be reached in time.
  kInternal,         // a programmer error surfaced as an error instead of a crash.
};

// Returns a stable lower-case name for `code`, used in JSON error bodies and logs.
inline const char* code_name(Code code) {
  switch (code) {
    case Code::kOk: return "ok";
    case Code::kInvalidArgument: return "invalid_argument";
    case Code::kNotFound: return "not_found";
    case Code::kRefused: return "refused";
    case Code::kCorruption: return "corruption";
    case Code::kIoError: return "io_error";
    case Code::kUnsupported: return "unsupported";
    case Code::kPermission: return "permission";
    case Code::kUnavailable: return "unavailable";
    case Code::kInternal: return "internal";
  }
  return "unknown";
}

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status ok() { return Status(); }
  static Status invalid(std::string m) { return {Code::kInvalidArgument, std::move(m)}; }
  static Status not_found(std::string m) { return {Code::kNotFound, std::move(m)}; }
  static Status refused(std::string m) { return {Code::kRefused, std::move(m)}; }
  static Status corruption(std::string m) { return {Code::kCorruption, std::move(m)}; }
  static Status io_error(std::string m) { return {Code::kIoError, std::move(m)}; }
  static Status unsupported(std::string m) { return {Code::kUnsupported, std::move(m)}; }
  static Status permission(std::string m) { return {Code::kPermission, std::move(m)}; }
  static Status unavailable(std::string m) { return {Code::kUnavailable, std::move(m)}; }
  static Status internal(std::string m) { return {Code::kInternal, std::move(m)}; }

  bool is_ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  std::string to_string() const {
    return is_ok() ? "ok" : std::string(code_name(code_)) + ": " + message_;
  }
  // Returns a copy with `context` prepended to the message ("context: message").
  Status with_context(const std::string& context) const {
    return is_ok() ? *this : Status(code_, context + ": " + message_);
  }

 private:
  Code code_ = Code::kOk;
  std::string message_;
};

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {  // NOLINT: implicit by design
    if (std::get<Status>(v_).is_ok()) v_ = Status::internal("Result built from ok Status");
  }

  bool is_ok() const { return std::holds_alternative<T>(v_); }
  const Status& status() const {
    static const Status kOk;
    return is_ok() ? kOk : std::get<Status>(v_);
  }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &std::get<T>(v_); }
  const T* operator->() const { return &std::get<T>(v_); }
  T& operator*() & { return std::get<T>(v_); }
  const T& operator*() const& { return std::get<T>(v_); }

 private:
  std::variant<T, Status> v_;
};

// Always-on check for invariants whose breach would corrupt money or the log (docs/style.md).
// Active in release builds too: a ledger that detects its own corruption must stop, not continue.
[[noreturn]] inline void check_failed(const char* expr, const char* file, int line) {
  std::cerr << "FATAL invariant violated: " << expr << " at " << file << ":" << line << std::endl;
  std::abort();
}

}  // namespace outpost

#define OUTPOST_CHECK(expr) \
  ((expr) ? (void)0 : ::outpost::check_failed(#expr, __FILE__, __LINE__))

// Propagates a non-ok Status from an expression returning Status.
#define OUTPOST_RETURN_IF_ERROR(expr)           \
  do {                                          \
    ::outpost::Status _st = (expr);             \
    if (!_st.is_ok()) return _st;               \
  } while (0)

#define OUTPOST_CONCAT_INNER(a, b) a##b
#define OUTPOST_CONCAT(a, b) OUTPOST_CONCAT_INNER(a, b)
// Assigns the value of a Result expression to `lhs`, or returns its Status. `lhs` is a declaration
// or an lvalue, which parentheses would break.
// NOLINTBEGIN(bugprone-macro-parentheses)
#define OUTPOST_ASSIGN_OR_RETURN(lhs, expr)                         \
  auto OUTPOST_CONCAT(_res_, __LINE__) = (expr);                    \
  if (!OUTPOST_CONCAT(_res_, __LINE__).is_ok())                     \
    return OUTPOST_CONCAT(_res_, __LINE__).status();                \
  lhs = std::move(OUTPOST_CONCAT(_res_, __LINE__)).value()
// NOLINTEND(bugprone-macro-parentheses)
