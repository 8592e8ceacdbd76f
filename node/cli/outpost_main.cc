// `outpost`: the operator and cashier CLI. Works on a data dir directly (the daemon may run at the
// same time: SQLite serializes writers). Exit codes: 0 success, 1 refused by a business rule,
// 2 bad input or usage, 3 an I/O or internal failure. `--json` prints machine-readable output.
#include <termios.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <string>

#include "outpost/crypto/crypto.h"
#include "outpost/node/audit_export.h"
#include "outpost/node/backup.h"
#include "outpost/node/identity.h"
#include "outpost/node/ledger.h"
#include "outpost/node/schema.h"
#include "outpost/sync/op.h"
#include "report_command.h"

namespace {

using outpost::Code;
using outpost::Status;
using outpost::node::Json;
using outpost::node::Ledger;
using outpost::node::Outcome;

constexpr int kExitOk = 0;
constexpr int kExitRefused = 1;
constexpr int kExitBadInput = 2;
constexpr int kExitFailure = 3;

struct Globals {
  std::string data_dir;
  bool json = false;
};

int exit_code_for(const Status& st) {
  switch (st.code()) {
    case Code::kOk: return kExitOk;
    case Code::kRefused: return kExitRefused;
    case Code::kIoError:
    case Code::kInternal:
    case Code::kUnavailable: return kExitFailure;
    default: return kExitBadInput;
  }
}

int report_error(const Globals& g, const Status& st) {
  if (g.json) {
    Json j;
    j["error"] = outpost::code_name(st.code());
    j["message"] = st.message();
    std::cout << j.dump() << "\n";
  }
  std::cerr << "outpost: error: " << st.message() << "\n";
  return exit_code_for(st);
}

std::string amount_str(std::int64_t v) { return std::to_string(v); }

void print_member_human(const Json& m) {
  std::cout << "member   " << m["id"].get<std::string>() << "\n"
            << "card     " << m["card"].get<std::string>() << "\n"
            << "name     " << m["name"].get<std::string>() << "\n";
  if (!m["phone"].get<std::string>().empty()) std::cout << "phone    " << m["phone"].get<std::string>() << "\n";
  if (!m["birthday"].get<std::string>().empty()) std::cout << "birthday " << m["birthday"].get<std::string>() << "\n";
  std::cout << "status   " << m["status"].get<std::string>() << "\n"
            << "tier     " << m["tier"].get<std::string>() << " (rolling spend " << m["rolling_spend_minor"].get<std::uint64_t>() << ")\n"
            << "points   " << amount_str(m["points"]["balance"].get<std::int64_t>()) << " (rights here " << m["points"]["rights_here"].get<std::int64_t>() << ")\n"
            << "wallet   " << amount_str(m["wallet"]["balance"].get<std::int64_t>()) << " (rights here " << m["wallet"]["rights_here"].get<std::int64_t>() << ")\n";
}

// The answer to a mutating command: its JSON body (outpost/node/schema.h, as the API answers) with
// --json, else one line for people.
int print_reply(const Globals& g, const Outcome& r) {
  if (g.json) {
    std::cout << outpost::node::schema::outcome_json(r).dump() << "\n";
  } else if (r.refused) {
    std::cerr << "outpost: refused: " << r.refusal.message << "\n";
  } else {
    const outpost::node::Done& d = r.done;
    std::cout << outpost::sync::kind_name(d.kind) << " ok: op "
              << outpost::sync::op_ref_string(d.origin, d.seq);
    if (d.amount) std::cout << " amount " << *d.amount;
    if (d.points && d.wallet)
      std::cout << " | points " << d.points->balance << ", wallet " << d.wallet->balance;
    if (r.replayed) std::cout << " (repeated request: first answer returned, nothing changed)";
    std::cout << "\n";
  }
  return r.refused ? kExitRefused : kExitOk;
}

// Reads one PIN: a line of stdin when `from_stdin`, else typed at the terminal without echo
// (`prompt` on stderr). Returns nullopt when there is neither (stdin is not a terminal).
outpost::Result<std::optional<std::string>> read_pin(bool from_stdin, const char* prompt) {
  const bool tty = ::isatty(STDIN_FILENO) == 1;
  if (!from_stdin && !tty) return std::optional<std::string>();
  termios saved{};
  const bool hide = !from_stdin && ::tcgetattr(STDIN_FILENO, &saved) == 0;
  if (!from_stdin) std::cerr << prompt << std::flush;
  if (hide) {
    termios quiet = saved;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    ::tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
  }
  std::string line;
  const bool got = static_cast<bool>(std::getline(std::cin, line));
  if (hide) {
    ::tcsetattr(STDIN_FILENO, TCSANOW, &saved);
    std::cerr << "\n";
  }
  if (!line.empty() && line.back() == '\r') line.pop_back();
  if (!got || line.empty()) return Status::invalid(std::string("no PIN given") + (from_stdin ? " on stdin" : ""));
  OUTPOST_RETURN_IF_ERROR(outpost::node::validate_pin(line));
  return std::optional<std::string>(line);
}

// Options of `spend` and `member pin` about the member's PIN (docs/api.md, "PIN").
struct PinArgs {
  bool pin_stdin = false;      // spend: the PIN; member pin: the new PIN
  bool old_pin_stdin = false;  // member pin: the old PIN, on the line before the new one
  bool override_pin = false;   // spend: pass the PIN by as the operator (recorded)
  bool admin = false;          // member pin: reset without the old PIN as the operator (recorded)
  std::string reason;
};

// The clearance of a spend or PIN change (`purpose`) past the member's PIN, asked as the
// operator chose; a refusal (or the error) otherwise, already printed, with its exit code.
struct Cleared {
  std::optional<Ledger::PinClearance> clearance;
  int exit_code = kExitOk;
};
Cleared clear_pin(const Globals& g, Ledger& ledger, const outpost::sync::MemberId& member,
                  outpost::sync::OpKind purpose, const PinArgs& a, std::uint64_t now_ms) {
  const bool spend = purpose == outpost::sync::OpKind::kSpend;
  if (spend ? a.override_pin : a.admin) {
    if (spend && a.reason.empty()) return {std::nullopt, report_error(g, Status::invalid("--override-pin needs --reason TEXT"))};
    std::string note = spend ? "pin-override by operator: " + a.reason
                             : "pin-reset by operator" + (a.reason.empty() ? std::string() : ": " + a.reason);
    return {Ledger::pin_override(member, note), kExitOk};
  }
  auto info = outpost::node::schema::json_of(ledger.member_view(member),
                                             outpost::node::schema::member_json);
  if (!info.is_ok()) return {std::nullopt, report_error(g, info.status())};
  std::optional<std::string> pin;
  if ((*info)["pin_set"].get<bool>()) {
    auto read = read_pin(spend ? a.pin_stdin : a.old_pin_stdin, spend ? "PIN: " : "old PIN: ");
    if (!read.is_ok()) return {std::nullopt, report_error(g, read.status())};
    pin = *read;
  }
  auto gate = ledger.check_pin(member, purpose, pin ? &*pin : nullptr, now_ms);
  if (!gate.is_ok()) return {std::nullopt, report_error(g, gate.status())};
  if (gate->kind == Ledger::PinGate::Kind::kRefuse)
    return {std::nullopt, print_reply(g, Outcome::refuse(gate->refusal))};
  return {gate->clearance, kExitOk};
}

// Opens the ledger of the --data dir.
outpost::Result<std::unique_ptr<Ledger>> open_ledger(const Globals& g, outpost::sync::Clock& clock) {
  if (g.data_dir.empty()) return Status::invalid("no data dir: pass --data DIR or set OUTPOST_DATA");
  return Ledger::open(g.data_dir, clock);
}

// Options of the identity commands (docs/security.md).
struct IdentityArgs {
  std::string enroll_file, out_file, request_file, node_ref, node_role = "store";
  std::uint32_t valid_days = 0;  // 0: the default of the node's role
  std::uint64_t after_seq = 0;
  bool force = false;
};
enum class IdentityCommand { kNone, kHqInit, kHqEnroll, kHqRevoke, kEnrollRequest, kInitEnroll };

// Runs `hq init|enroll|revoke`, `enroll-request` or `init --enroll` (identity.h) and returns the
// exit code.
int run_identity_command(const Globals& g, outpost::sync::Clock& clock, IdentityCommand cmd,
                         const IdentityArgs& a, const std::string& name) {
  namespace node = outpost::node;
  const std::string& node_ref = a.node_ref;
  const std::string& role = a.node_role;
  const std::string& out_file = a.out_file;
  const std::uint32_t valid_days = a.valid_days;
  outpost::Result<Json> r = Status::internal("no identity command");
  std::string human;
  if (cmd == IdentityCommand::kHqInit) {
    r = node::hq_init(g.data_dir, name, valid_days ? valid_days : node::kHqValidDaysDefault, clock);
    if (r.is_ok()) {
      human = "initialized HQ node '" + name + "' in " + g.data_dir + "\nnetwork id  " +
              (*r)["network_id"].get<std::string>() + "\nroot key    " +
              (*r)["root_public_key"].get<std::string>() + " (fingerprint " +
              (*r)["root_fingerprint"].get<std::string>() + ")\nroot.key is the chain's root of trust: " +
              "keep it offline in production (docs/security.md)\n";
    }
  } else if (cmd == IdentityCommand::kHqEnroll) {
    outpost::sync::NodeRole node_role = outpost::sync::NodeRole::kStore;
    outpost::sync::parse_role(role, node_role);
    auto request = node::read_json_file(a.request_file);
    r = request.is_ok() ? node::hq_enroll(g.data_dir, node_ref, node_role, *request,
                                          valid_days ? valid_days : node::kNodeValidDaysDefault, clock)
                        : outpost::Result<Json>(request.status());
    if (r.is_ok()) {
      Status st = node::write_json_file(out_file, *r);
      if (!st.is_ok()) r = st;
    }
    if (r.is_ok()) {
      human = "enrolled " + role + " node '" + node_ref + "' (" + (*r)["node_id"].get<std::string>() +
              ") in roster v" + std::to_string((*r)["roster"]["version"].get<std::uint64_t>()) +
              "\nrequest fingerprint " + (*r)["request_fingerprint"].get<std::string>() +
              " (compare with the store's)\nwrote " + out_file + "\n";
    }
  } else if (cmd == IdentityCommand::kHqRevoke) {
    r = node::hq_revoke(g.data_dir, node_ref, a.after_seq, a.force, clock);
    if (r.is_ok()) {
      human = "revoked '" + (*r)["name"].get<std::string>() + "' after seq " + std::to_string(a.after_seq) +
              " in roster v" + std::to_string((*r)["roster_version"].get<std::uint64_t>()) + "\n";
    }
  } else if (cmd == IdentityCommand::kEnrollRequest) {
    r = node::make_enroll_request(g.data_dir);
    if (r.is_ok()) {
      Status st = node::write_json_file(out_file, *r);
      if (!st.is_ok()) r = st;
    }
    if (r.is_ok()) {
      human = "wrote " + out_file + " (public keys only)\nrequest fingerprint " +
              (*r)["fingerprint"].get<std::string>() + ": read it to the HQ operator\n";
    }
  } else {
    auto file = node::read_json_file(a.enroll_file);
    r = file.is_ok() ? node::install_enrollment(g.data_dir, *file) : outpost::Result<Json>(file.status());
    if (r.is_ok()) {
      human = "enrolled as " + (*r)["role"].get<std::string>() + " node '" + (*r)["name"].get<std::string>() +
              "' in network " + (*r)["network_id"].get<std::string>() + "\nroot fingerprint " +
              (*r)["root_fingerprint"].get<std::string>() + " (compare with HQ's), roster v" +
              std::to_string((*r)["roster_version"].get<std::uint64_t>()) + "\n";
    }
  }
  if (!r.is_ok()) return report_error(g, r.status());
  std::cout << (g.json ? r->dump() + "\n" : human);
  return kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  if (!outpost::crypto::init().is_ok()) {
    std::cerr << "outpost: error: libsodium failed to initialize\n";
    return kExitFailure;
  }
  Globals g;
  if (const char* env = std::getenv("OUTPOST_DATA")) g.data_dir = env;

  CLI::App app{"outpost: operate an Outpost node's data dir (members, points, wallet, log)"};
  app.require_subcommand(1);
  app.fallthrough();  // --data and --json may also follow the subcommand: `outpost hq init --data D`
  app.add_option("--data,-d", g.data_dir, "data dir of the node (default: $OUTPOST_DATA)");
  app.add_flag("--json", g.json, "print machine-readable JSON on stdout");
  app.footer("Exit codes: 0 success, 1 refused by a business rule, 2 bad input or usage, 3 I/O failure.");

  std::string request_id, receipt;
  auto add_request_opts = [&](CLI::App* c) {
    c->add_option("--request-id", request_id, "idempotency key (default: random); a repeat returns the first answer");
    c->add_option("--receipt", receipt, "POS receipt reference recorded in the op");
  };

  // init
  outpost::node::InitOptions init_opts;
  IdentityArgs id_args;
  auto* init = app.add_subcommand("init", "create a new node data dir (keys, database), or with --enroll install HQ's enrollment file into it");
  auto* init_name = init->add_option("--name", init_opts.name, "node name shown to operators");
  init->add_option("--role", init_opts.role, "store or hq")->check(CLI::IsMember({"store", "hq"}));
  init->add_option("--enroll", id_args.enroll_file, "enrollment file from `outpost hq enroll` (docs/security.md)")
      ->excludes(init_name);

  // identity: HQ root, enrollment, revocation, roster (docs/security.md)
  auto* hq = app.add_subcommand("hq", "HQ authority: create the chain's root, enroll and revoke nodes");
  hq->require_subcommand(1);
  auto* hq_init = hq->add_subcommand("init", "create the network id, the root key and this HQ node");
  hq_init->add_option("--name", init_opts.name, "name of this HQ node")->required();
  hq_init->add_option("--valid-days", id_args.valid_days, "validity of the HQ node's certificate (default 3650)");
  auto* hq_enroll = hq->add_subcommand("enroll", "sign a node's certificate from its request and write its enrollment file");
  hq_enroll->add_option("NAME", id_args.node_ref, "node name (unique in the chain)")->required();
  hq_enroll->add_option("--role", id_args.node_role, "store or hq")->check(CLI::IsMember({"store", "hq"}));
  hq_enroll->add_option("--request", id_args.request_file, "request file from `outpost enroll-request`")->required();
  hq_enroll->add_option("--out", id_args.out_file, "enrollment file to write")->required();
  hq_enroll->add_option("--valid-days", id_args.valid_days, "certificate validity (default 730)");
  auto* hq_revoke = hq->add_subcommand("revoke", "revoke a node: its ops after --after-seq become invalid");
  hq_revoke->add_option("NODE", id_args.node_ref, "node name or id")->required();
  hq_revoke->add_option("--after-seq", id_args.after_seq, "last seq of that node that stays valid")->required();
  hq_revoke->add_flag("--force", id_args.force, "allow a cutoff below the seq HQ already holds");
  auto* enroll_request = app.add_subcommand("enroll-request", "write this node's enrollment request (public keys only)");
  enroll_request->add_option("--out", id_args.out_file, "request file to write")->required();
  auto* roster = app.add_subcommand("roster", "inspect the HQ-signed roster this node holds");
  roster->require_subcommand(1);
  auto* roster_show = roster->add_subcommand("show", "list the nodes of the newest roster and their status");

  // program rules (docs/program-rules.md)
  std::string rules_file;
  auto* hq_rules = hq->add_subcommand("rules", "sign program rules (tiers, earn rates) from a TOML file for the whole chain (root key)");
  hq_rules->add_option("FILE", rules_file, "rules file (docs/program-rules.md); its version must be newer than HQ's last")
      ->required();
  auto* rules = app.add_subcommand("rules", "inspect the program rules in force at this node");
  rules->require_subcommand(1);
  auto* rules_show = rules->add_subcommand("show", "print the rules in force and where they come from (hq, file, default)");

  // backup and restore (docs/operations.md, "Backup and restore")
  std::string backup_out, restore_file;
  auto* backup = app.add_subcommand("backup", "write a consistent copy of this node's database (also while outpostd runs)");
  backup->add_option("--out", backup_out, "backup file to create (must not exist)")->required();
  auto* restore = app.add_subcommand("restore", "put a backup of this node back in place (outpostd must be stopped); the node then signs nothing until it has heard from HQ");
  restore->add_option("FILE", restore_file, "backup file written by `outpost backup`")->required();
  auto* fence = app.add_subcommand("fence", "the seq fence of a restored node: show it, or lift it by operator decision");
  fence->require_subcommand(1);
  auto* fence_show = fence->add_subcommand("show", "why this node may not sign ops now, if it may not");
  auto* fence_release = fence->add_subcommand("release", "let a restored node sign before it heard from HQ (it may then reuse a seq: equivocation)");
  bool fence_yes = false;
  fence_release->add_flag("--yes", fence_yes, "confirm: you know no newer op of this node exists anywhere")->required();

  // audits (docs/audit-bundle.md)
  auto* hq_checkpoint = hq->add_subcommand(
      "checkpoint",
      "sign a Merkle checkpoint of every origin's log HQ holds, and the tree head set listing "
      "every origin and its log length (root key)");
  outpost::node::ExportOptions export_opts;
  std::string export_from, export_to;
  auto* export_audit = app.add_subcommand("export-audit", "write an audit bundle for outpost-audit verify");
  export_audit->add_option("--out", export_opts.out_dir, "bundle directory to create (must not exist or be empty)")->required();
  export_audit->add_option("--from", export_from, "only ops on or after this UTC day (YYYY-MM-DD)");
  export_audit->add_option("--to", export_to, "only ops up to this UTC day included (YYYY-MM-DD)");

  // member
  auto* member = app.add_subcommand("member", "enroll, show, find and update members");
  member->require_subcommand(1);
  outpost::node::EnrollRequest enroll;
  auto* madd = member->add_subcommand("add", "enroll a new member");
  madd->add_option("--card", enroll.card, "card number (8-19 digits)")->required();
  madd->add_option("--name", enroll.name, "member name")->required();
  madd->add_option("--phone", enroll.phone, "phone number (+ and 6-15 digits)");
  madd->add_option("--birthday", enroll.birthday, "birthday YYYY-MM-DD");
  add_request_opts(madd);
  std::string member_ref;
  auto* mshow = member->add_subcommand("show", "show a member's profile, tier and balances");
  mshow->add_option("MEMBER", member_ref, "member id (32 hex) or card number")->required();
  std::string find_card, find_phone;
  auto* mfind = member->add_subcommand("find", "find members by card or phone");
  auto* fc = mfind->add_option("--card", find_card, "card number");
  mfind->add_option("--phone", find_phone, "phone number")->excludes(fc);
  std::optional<std::string> up_name, up_phone, up_birthday, up_status;
  auto* mupd = member->add_subcommand("update", "update profile fields (last writer wins)");
  mupd->add_option("MEMBER", member_ref, "member id or card number")->required();
  mupd->add_option("--name", up_name, "new name");
  mupd->add_option("--phone", up_phone, "new phone");
  mupd->add_option("--birthday", up_birthday, "new birthday YYYY-MM-DD");
  mupd->add_option("--status", up_status, "active, blocked or closed (closing needs a zero wallet)");
  bool reopen = false;
  mupd->add_flag("--reopen", reopen, "allow --status to reopen a closed member");
  add_request_opts(mupd);
  PinArgs pin_args;
  auto* mpin = member->add_subcommand("pin", "set or change the member's wallet PIN (4-8 digits; typed, or --pin-stdin)");
  mpin->add_option("MEMBER", member_ref, "member id or card number")->required();
  mpin->add_flag("--pin-stdin", pin_args.pin_stdin, "read the new PIN from stdin (after the old one with --old-pin-stdin)");
  auto* old_pin_flag = mpin->add_flag("--old-pin-stdin", pin_args.old_pin_stdin, "read the current PIN from the first line of stdin");
  mpin->add_flag("--admin", pin_args.admin, "reset without the old PIN, as the operator (recorded in the op)")
      ->excludes(old_pin_flag);
  mpin->add_option("--reason", pin_args.reason, "with --admin: why, recorded in the op");
  add_request_opts(mpin);

  // money
  std::string amount_text;
  auto* earn = app.add_subcommand("earn", "record a purchase and earn points by the member's tier");
  earn->add_option("MEMBER", member_ref, "member id or card number")->required();
  earn->add_option("--purchase", amount_text, "purchase amount in minor units (integer)")->required();
  add_request_opts(earn);
  auto* redeem = app.add_subcommand("redeem", "redeem points");
  redeem->add_option("MEMBER", member_ref, "member id or card number")->required();
  redeem->add_option("--points", amount_text, "points to redeem (integer)")->required();
  add_request_opts(redeem);
  auto* topup = app.add_subcommand("topup", "top up the member's wallet (stored value)");
  topup->add_option("MEMBER", member_ref, "member id or card number")->required();
  topup->add_option("--amount", amount_text, "amount in minor units (integer)")->required();
  add_request_opts(topup);
  auto* spend = app.add_subcommand("spend", "pay from the member's wallet");
  spend->add_option("MEMBER", member_ref, "member id or card number")->required();
  spend->add_option("--amount", amount_text, "amount in minor units (integer)")->required();
  auto* pin_stdin_flag = spend->add_flag("--pin-stdin", pin_args.pin_stdin, "read the member's PIN from stdin (else it is asked on a terminal)");
  spend->add_flag("--override-pin", pin_args.override_pin, "spend without the PIN as the operator (needs --reason; recorded in the op)")
      ->excludes(pin_stdin_flag);
  spend->add_option("--reason", pin_args.reason, "why the PIN is overridden, recorded in the op's receipt");
  add_request_opts(spend);
  std::string op_ref;
  auto* reverse = app.add_subcommand("reverse", "reverse an earn, redeem, topup or spend op (once, at its origin)");
  reverse->add_option("OP", op_ref, "op as ORIGIN:SEQ (as printed by history)")->required();
  add_request_opts(reverse);
  std::size_t limit = 50;
  auto* history = app.add_subcommand("history", "list a member's ops, newest first");
  history->add_option("MEMBER", member_ref, "member id or card number")->required();
  history->add_option("--limit", limit, "at most this many ops (max 1000)")->check(CLI::Range(1, 1000));

  auto* log = app.add_subcommand("log", "inspect this node's signed op log");
  log->require_subcommand(1);
  auto* verify = log->add_subcommand("verify", "verify every signature and chain link, replay and compare balances");
  auto* status = app.add_subcommand("status", "show this node's identity and version vector");

  auto* terminal = app.add_subcommand("terminal", "manage API credentials of POS terminals and admins");
  terminal->require_subcommand(1);
  std::string term_name, term_role = "pos";
  auto* tadd = terminal->add_subcommand("add", "create a terminal and print its bearer token (shown once)");
  tadd->add_option("NAME", term_name, "terminal name, e.g. till-1")->required();
  tadd->add_option("--role", term_role, "pos (POS API) or admin (admin API and POS API)")
      ->check(CLI::IsMember({"pos", "admin"}));
  auto* tlist = terminal->add_subcommand("list", "list terminals (tokens are never shown again)");

  outpost::cli::ReportArgs report_args;
  auto* report = outpost::cli::add_report_command(app, report_args);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? kExitOk : kExitBadInput;
  }

  outpost::sync::SystemEnv clock;
  if (request_id.empty()) request_id = outpost::node::new_request_id();
  if (*report) return outpost::cli::run_report_command(g.data_dir, g.json, report_args, clock);

  if (*init || *hq || *enroll_request) {
    if (g.data_dir.empty()) return report_error(g, Status::invalid("no data dir: pass --data DIR"));
  }
  const IdentityCommand id_cmd = *hq_init ? IdentityCommand::kHqInit
                                : *hq_enroll ? IdentityCommand::kHqEnroll
                                : *hq_revoke ? IdentityCommand::kHqRevoke
                                : *enroll_request ? IdentityCommand::kEnrollRequest
                                : (*init && !id_args.enroll_file.empty()) ? IdentityCommand::kInitEnroll
                                : IdentityCommand::kNone;
  if (id_cmd != IdentityCommand::kNone) return run_identity_command(g, clock, id_cmd, id_args, init_opts.name);
  if (*hq_checkpoint || *export_audit) {
    if (g.data_dir.empty()) return report_error(g, Status::invalid("no data dir: pass --data DIR"));
    if (!export_from.empty()) export_opts.from = export_from;
    if (!export_to.empty()) export_opts.to = export_to;
    export_opts.progress = outpost::node::stderr_progress();
    auto r = *hq_checkpoint ? outpost::node::hq_checkpoint(g.data_dir, clock)
                            : outpost::node::export_audit(g.data_dir, export_opts, clock);
    if (!r.is_ok()) return report_error(g, r.status());
    std::cout << (g.json ? r->dump() + "\n"
                         : *hq_checkpoint ? outpost::node::checkpoint_text(*r) : outpost::node::export_text(*r));
    return kExitOk;
  }
  if (*backup || *restore) {
    if (g.data_dir.empty()) return report_error(g, Status::invalid("no data dir: pass --data DIR"));
    auto r = *backup ? outpost::node::backup_data_dir(g.data_dir, backup_out)
                     : outpost::node::restore_data_dir(g.data_dir, restore_file, clock);
    if (!r.is_ok()) return report_error(g, r.status());
    if (g.json) {
      std::cout << r->dump() << "\n";
    } else if (*backup) {
      std::cout << "backup of node " << (*r)["node_id"].get<std::string>() << " written to " << backup_out << " ("
                << (*r)["ops"].get<std::uint64_t>() << " ops, own seq " << (*r)["own_seq"].get<std::uint64_t>()
                << ", " << (*r)["bytes"].get<std::uint64_t>() << " bytes)\n";
    } else {
      std::cout << "restored node " << (*r)["node_id"].get<std::string>() << " to own seq "
                << (*r)["own_seq"].get<std::uint64_t>() << " (" << (*r)["ops"].get<std::uint64_t>() << " ops)";
      if (!(*r)["replaced"].get<std::string>().empty()) {
        std::cout << "; the replaced database is kept as " << (*r)["replaced"].get<std::string>();
      }
      std::cout << "\nit signs no op until it has heard from HQ which of its own ops the chain holds: start outpostd\n";
    }
    return kExitOk;
  }
  if (*hq_rules) {
    if (g.data_dir.empty()) return report_error(g, Status::invalid("no data dir: pass --data DIR"));
    auto r = outpost::node::hq_set_rules(g.data_dir, rules_file, clock);
    if (!r.is_ok()) return report_error(g, r.status());
    if (g.json) {
      std::cout << r->dump() << "\n";
    } else {
      std::cout << "signed program rules v" << (*r)["version"].get<std::uint64_t>() << " ("
                << (*r)["tiers"].size() << " tiers); running nodes put them in force at their next sync\n";
    }
    return kExitOk;
  }
  if (*init) {
    if (init_opts.name.empty()) return report_error(g, Status::invalid("init needs --name NAME (or --enroll FILE)"));
    Status st = Ledger::init(g.data_dir, init_opts);
    if (!st.is_ok()) return report_error(g, st);
    auto l = Ledger::open(g.data_dir, clock);
    if (!l.is_ok()) return report_error(g, l.status());
    auto s =
        outpost::node::schema::json_of((*l)->node_status(), outpost::node::schema::status_json);
    if (!s.is_ok()) return report_error(g, s.status());
    if (g.json) {
      std::cout << s->dump() << "\n";
    } else {
      std::cout << "initialized " << init_opts.role << " node '" << init_opts.name << "' in " << g.data_dir
                << "\nnode id " << (*s)["node_id"].get<std::string>() << "\n";
    }
    return kExitOk;
  }

  auto opened = open_ledger(g, clock);
  if (!opened.is_ok()) return report_error(g, opened.status());
  Ledger& ledger = **opened;

  auto resolve = [&]() { return ledger.resolve_member(member_ref); };
  auto run_reply = [&](const outpost::Result<Outcome>& r) {
    return r.is_ok() ? print_reply(g, *r) : report_error(g, r.status());
  };

  if (*member) {
    if (*madd) {
      enroll.request_id = request_id;
      auto r = ledger.enroll(enroll);
      if (r.is_ok() && !r->refused && !g.json) {
        std::cout << "enrolled member " << outpost::sync::id_hex(r->done.member) << " card "
                  << enroll.card << " (op "
                  << outpost::sync::op_ref_string(r->done.origin, r->done.seq) << ")"
                  << (r->replayed ? " (repeated request)" : "") << "\n";
        return kExitOk;
      }
      return run_reply(r);
    }
    if (*mshow) {
      auto id = resolve();
      if (!id.is_ok()) return report_error(g, id.status());
      auto j = outpost::node::schema::json_of(ledger.member_view(*id),
                                              outpost::node::schema::member_json);
      if (!j.is_ok()) return report_error(g, j.status());
      if (g.json) std::cout << j->dump() << "\n"; else print_member_human(*j);
      return kExitOk;
    }
    if (*mfind) {
      if (find_card.empty() && find_phone.empty()) return report_error(g, Status::invalid("member find needs --card or --phone"));
      auto ids = find_card.empty() ? ledger.find_by_phone(find_phone) : ledger.find_by_card(find_card);
      if (!ids.is_ok()) return report_error(g, ids.status());
      Json arr = Json::array();
      for (const auto& id : *ids) {
        auto j = outpost::node::schema::json_of(ledger.member_view(id),
                                                outpost::node::schema::member_json);
        if (j.is_ok()) arr.push_back(*j);
      }
      if (g.json) {
        std::cout << arr.dump() << "\n";
      } else {
        if (arr.empty()) std::cout << "no member found\n";
        for (const auto& m : arr) {
          std::cout << m["id"].get<std::string>() << "  card " << m["card"].get<std::string>() << "  "
                    << m["name"].get<std::string>() << "  points " << m["points"]["balance"].get<std::int64_t>()
                    << "  wallet " << m["wallet"]["balance"].get<std::int64_t>() << "\n";
        }
      }
      return kExitOk;
    }
    if (*mupd) {
      auto id = resolve();
      if (!id.is_ok()) return report_error(g, id.status());
      std::vector<outpost::sync::FieldValue> fields;
      using outpost::sync::Field;
      if (up_name) fields.push_back({Field::kName, *up_name});
      if (up_phone) fields.push_back({Field::kPhone, *up_phone});
      if (up_birthday) fields.push_back({Field::kBirthday, *up_birthday});
      if (up_status) fields.push_back({Field::kStatus, *up_status});
      if (reopen && !up_status) return report_error(g, Status::invalid("--reopen goes with --status"));
      return run_reply(ledger.update_profile(request_id, *id, fields, reopen));
    }
    if (*mpin) {
      auto id = resolve();
      if (!id.is_ok()) return report_error(g, id.status());
      auto prior = ledger.has_request(request_id);
      if (!prior.is_ok()) return report_error(g, prior.status());
      std::optional<Ledger::PinClearance> authority;
      if (!*prior) {  // a repeated request_id is answered from its first execution
        Cleared c = clear_pin(g, ledger, *id, outpost::sync::OpKind::kProfile, pin_args, clock.now_ms());
        if (!c.clearance) return c.exit_code;
        authority = c.clearance;
      }
      auto pin = read_pin(pin_args.pin_stdin, "new PIN: ");
      if (!pin.is_ok()) return report_error(g, pin.status());
      if (!*pin) return report_error(g, Status::invalid("give the new PIN on a terminal or with --pin-stdin"));
      return run_reply(ledger.set_pin(request_id, *id, **pin, authority ? &*authority : nullptr));
    }
  }

  if (*earn || *redeem || *topup || *spend) {
    const char* what = *earn ? "purchase" : *redeem ? "points" : "amount";
    auto amount = outpost::node::parse_amount(amount_text, what);
    if (!amount.is_ok()) return report_error(g, amount.status());
    auto id = resolve();
    if (!id.is_ok()) return report_error(g, id.status());
    if (*earn) return run_reply(ledger.earn(request_id, *id, *amount, receipt));
    if (*redeem) return run_reply(ledger.redeem(request_id, *id, *amount, receipt));
    if (*topup) return run_reply(ledger.topup(request_id, *id, *amount, receipt));
    auto prior = ledger.has_request(request_id);
    if (!prior.is_ok()) return report_error(g, prior.status());
    if (*prior) return run_reply(ledger.spend(request_id, *id, *amount, receipt));  // a replay
    Cleared c = clear_pin(g, ledger, *id, outpost::sync::OpKind::kSpend, pin_args, clock.now_ms());
    if (!c.clearance) return c.exit_code;
    return run_reply(ledger.spend(request_id, *id, *amount, receipt, &*c.clearance));
  }

  if (*reverse) {
    outpost::sync::NodeId origin{};
    std::uint64_t seq = 0;
    if (!outpost::sync::parse_op_ref(op_ref, origin, seq)) {
      return report_error(g, Status::invalid("op must be ORIGIN:SEQ (32 hex digits, colon, seq), got '" + op_ref + "'"));
    }
    return run_reply(ledger.reverse(request_id, origin, seq));
  }

  if (*history) {
    auto id = resolve();
    if (!id.is_ok()) return report_error(g, id.status());
    auto h = outpost::node::schema::json_of(ledger.history(*id, limit),
                                            outpost::node::schema::history_json);
    if (!h.is_ok()) return report_error(g, h.status());
    if (g.json) {
      std::cout << h->dump() << "\n";
    } else {
      for (const auto& op : *h) {
        std::cout << op["op"].get<std::string>() << "  " << op["kind"].get<std::string>();
        if (op.contains("amount")) std::cout << " " << op["account"].get<std::string>() << " " << op["amount"].get<std::uint64_t>();
        if (op.contains("purchase_minor")) std::cout << " (purchase " << op["purchase_minor"].get<std::uint64_t>() << ")";
        if (op.contains("reverses")) std::cout << " reverses " << op["reverses"].get<std::string>();
        if (op.contains("reversed_by")) std::cout << " [reversed by " << op["reversed_by"].get<std::string>() << "]";
        std::cout << "\n";
      }
    }
    return kExitOk;
  }

  if (*verify) {
    auto rep = ledger.verify_log();
    if (!rep.is_ok()) return report_error(g, rep.status());
    if (g.json) {
      Json j;
      j["ok"] = rep->ok();
      j["ops_checked"] = rep->ops_checked;
      j["origins"] = rep->origins;
      j["members_compared"] = rep->members_compared;
      j["findings"] = rep->findings;
      std::cout << j.dump() << "\n";
    } else {
      for (const auto& f : rep->findings) std::cout << "FINDING " << f << "\n";
      std::cout << (rep->ok() ? "log verify: OK" : "log verify: FAILED") << " — " << rep->ops_checked
                << " ops, " << rep->origins << " origins, " << rep->members_compared << " members replayed and compared, "
                << rep->findings.size() << " findings\n";
    }
    return rep->ok() ? kExitOk : kExitRefused;
  }

  if (*tadd) {
    auto token = ledger.add_terminal(term_name, term_role);
    if (!token.is_ok()) return report_error(g, token.status());
    if (g.json) {
      std::cout << Json{{"name", term_name}, {"role", term_role}, {"token", *token}}.dump() << "\n";
    } else {
      std::cout << *token << "\n";
      std::cerr << "terminal '" << term_name << "' (" << term_role
                << ") created; store the token now, it is not shown again\n";
    }
    return kExitOk;
  }
  if (*tlist) {
    auto ts = ledger.store().list_terminals();
    if (!ts.is_ok()) return report_error(g, ts.status());
    Json arr = Json::array();
    for (const auto& t : *ts) arr.push_back({{"name", t.name}, {"role", t.role}, {"created_ms", t.created_ms}});
    if (g.json) {
      std::cout << arr.dump() << "\n";
    } else {
      for (const auto& t : *ts) std::cout << t.name << "  " << t.role << "\n";
    }
    return kExitOk;
  }

  if (*roster_show) {
    auto r = outpost::node::roster_json(ledger.store(), clock.now_ms());
    if (!r.is_ok()) return report_error(g, r.status());
    std::cout << (g.json ? r->dump() : outpost::node::roster_text(*r));
    if (g.json) std::cout << "\n";
    return kExitOk;
  }

  if (*fence_show || *fence_release) {
    if (*fence_release) {
      // A running outpostd keeps the fence in memory: lifting it underneath would not reach it.
      auto running = outpost::node::DataDirLock::held_by_other(g.data_dir);
      if (!running.is_ok()) return report_error(g, running.status());
      if (*running) return report_error(g, Status::unavailable("outpostd runs on " + g.data_dir + "; stop it first"));
    }
    auto r = *fence_show ? outpost::node::schema::json_of(ledger.fence_state(),
                                                          outpost::node::schema::fence_json)
                         : outpost::node::schema::json_of(ledger.release_fence(),
                                                          outpost::node::schema::fence_json);
    if (!r.is_ok()) return report_error(g, r.status());
    if (g.json) {
      std::cout << r->dump() << "\n";
    } else if (*fence_show) {
      std::cout << ((*r)["fenced"].get<bool>() ? "fenced: " + (*r)["reason"].get<std::string>()
                                              : std::string("not fenced: this node may sign ops"))
                << "\n";
    } else {
      std::cout << "fence released (it was: " << ((*r)["fenced"].get<bool>() ? (*r)["reason"].get<std::string>() : "not fenced")
                << ")\n";
    }
    return kExitOk;
  }
  if (*rules_show) {
    Json r = outpost::node::schema::rules_json(ledger.rules(), ledger.rules_source());
    if (g.json) {
      std::cout << r.dump() << "\n";
      return kExitOk;
    }
    std::cout << "program rules v" << r["version"].get<std::uint64_t>() << " (" << r["source"].get<std::string>()
              << "): " << r["unit_minor"].get<std::uint64_t>() << " minor units per earn unit, tiers over "
              << r["window_months"].get<std::uint64_t>() << " months of spend\n";
    for (const auto& t : r["tiers"]) {
      std::cout << "  " << t["name"].get<std::string>() << "  from " << t["threshold_minor"].get<std::uint64_t>()
                << "  earns " << t["points_per_unit"].get<std::uint64_t>() << " points per unit\n";
    }
    return kExitOk;
  }
  if (*status) {
    auto s =
        outpost::node::schema::json_of(ledger.node_status(), outpost::node::schema::status_json);
    if (!s.is_ok()) return report_error(g, s.status());
    std::cout << (g.json ? s->dump() : s->dump(2)) << "\n";
    return kExitOk;
  }
  return kExitBadInput;
}
