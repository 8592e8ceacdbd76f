#include <algorithm>
#include <cctype>

#include "outpost/base/limits.h"
#include "outpost/crypto/crypto.h"
#include "outpost/node/ledger.h"

namespace outpost::node {

namespace {
bool all_digits(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}
}  // namespace

Result<std::uint64_t> parse_amount(const std::string& text, const char* what) {
  const std::string name(what);
  if (text.empty()) return Status::invalid(name + " is empty");
  if (text[0] == '-') return Status::invalid(name + " must be positive, got " + text);
  if (!all_digits(text)) return Status::invalid(name + " must be a whole number, got '" + text + "'");
  if (text.size() > 13) return Status::invalid(name + " " + text + " is above the maximum " + std::to_string(limits::kAmountMax));
  std::uint64_t v = 0;
  for (char c : text) v = v * 10 + static_cast<std::uint64_t>(c - '0');
  if (v == 0) return Status::invalid(name + " must be positive, got 0");
  if (v > limits::kAmountMax) {
    return Status::invalid(name + " " + text + " is above the maximum " + std::to_string(limits::kAmountMax));
  }
  return v;
}

Status validate_card(const std::string& card) {
  if (!all_digits(card) || card.size() < limits::kCardDigitsMin || card.size() > limits::kCardDigitsMax) {
    return Status::invalid("card number must be " + std::to_string(limits::kCardDigitsMin) + " to " +
                           std::to_string(limits::kCardDigitsMax) + " digits, got '" + card + "'");
  }
  return Status::ok();
}

Status validate_phone(const std::string& phone) {
  std::string digits = phone;
  if (!digits.empty() && digits[0] == '+') digits.erase(0, 1);
  if (!all_digits(digits) || digits.size() < limits::kPhoneDigitsMin || digits.size() > limits::kPhoneDigitsMax) {
    return Status::invalid("phone must be an optional '+' and " + std::to_string(limits::kPhoneDigitsMin) +
                           " to " + std::to_string(limits::kPhoneDigitsMax) + " digits, got '" + phone + "'");
  }
  return Status::ok();
}

Status validate_name(const std::string& name) {
  if (name.empty()) return Status::invalid("name is empty");
  if (name.size() > limits::kNameBytesMax) return Status::invalid("name is longer than " + std::to_string(limits::kNameBytesMax) + " bytes");
  for (unsigned char c : name) {
    if (c < 0x20 || c == 0x7f) return Status::invalid("name contains a control character");
  }
  return Status::ok();
}

Status validate_birthday(const std::string& d) {
  auto bad = [&] { return Status::invalid("birthday must be a date YYYY-MM-DD, got '" + d + "'"); };
  if (d.size() != 10 || d[4] != '-' || d[7] != '-') return bad();
  for (int i : {0, 1, 2, 3, 5, 6, 8, 9}) {
    if (!std::isdigit(static_cast<unsigned char>(d[i]))) return bad();
  }
  int y = std::stoi(d.substr(0, 4)), m = std::stoi(d.substr(5, 2)), day = std::stoi(d.substr(8, 2));
  static const int kDays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (y < 1900 || y > 2100 || m < 1 || m > 12 || day < 1 || day > kDays[m - 1]) return bad();
  bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  if (m == 2 && day == 29 && !leap) return bad();
  return Status::ok();
}

Status validate_request_id(const std::string& id) {
  if (id.empty() || id.size() > limits::kRequestIdBytesMax) {
    return Status::invalid("request_id must be 1 to " + std::to_string(limits::kRequestIdBytesMax) + " characters");
  }
  for (char c : id) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' || c == ':')) {
      return Status::invalid("request_id may contain only letters, digits and - _ . :");
    }
  }
  return Status::ok();
}

Status validate_pin(const std::string& pin) {
  if (pin.size() < 4 || pin.size() > 8 || pin.find_first_not_of("0123456789") != std::string::npos) {
    return Status::invalid("PIN must be 4 to 8 digits");
  }
  return Status::ok();
}

std::string new_request_id() {
  std::array<std::uint8_t, 16> b{};
  crypto::random_bytes(b);
  return crypto::to_hex(b);
}

}  // namespace outpost::node
