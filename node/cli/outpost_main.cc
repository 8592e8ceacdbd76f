// `outpost`: the operator and cashier CLI. Works on a data dir directly (the daemon may run at the
// same time: SQLite serializes writers). Exit codes: 0 success, 1 refused by a business rule,
// 2 bad input or usage, 3 an I/O or internal failure. `--json` prints machine-readable output.
#include <cstdlib>
#include <iostream>
#include <optional>
#include <string>

#include <CLI/CLI.hpp>

#include "outpost/crypto/crypto.h"
#include "outpost/node/ledger.h"

namespace {

using outpost::Code;
using outpost::Status;
using outpost::node::Json;
using outpost::node::Ledger;
using outpost::node::Reply;

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

int print_reply(const Globals& g, const Reply& r) {
  if (g.json) {
    std::cout << r.body.dump() << "\n";
  } else if (r.refused) {
    std::cerr << "outpost: refused: " << r.body["message"].get<std::string>() << "\n";
  } else {
    std::cout << r.body["kind"].get<std::string>() << " ok: op " << r.body["op"].get<std::string>();
    if (r.body.contains("amount")) std::cout << " amount " << r.body["amount"].get<std::uint64_t>();
    std::cout << " | points " << r.body["points"]["balance"].get<std::int64_t>() << ", wallet "
              << r.body["wallet"]["balance"].get<std::int64_t>();
    if (r.replayed) std::cout << " (repeated request: first answer returned, nothing changed)";
    std::cout << "\n";
  }
  return r.refused ? kExitRefused : kExitOk;
}

// Opens the ledger of the --data dir.
outpost::Result<std::unique_ptr<Ledger>> open_ledger(const Globals& g, outpost::sync::Clock& clock) {
  if (g.data_dir.empty()) return Status::invalid("no data dir: pass --data DIR or set OUTPOST_DATA");
  return Ledger::open(g.data_dir, clock);
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
  auto* init = app.add_subcommand("init", "create a new node data dir (key, database)");
  init->add_option("--name", init_opts.name, "node name shown to operators")->required();
  init->add_option("--role", init_opts.role, "store or hq")->check(CLI::IsMember({"store", "hq"}));

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
  mupd->add_option("--status", up_status, "active, blocked or closed");
  add_request_opts(mupd);

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

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? kExitOk : kExitBadInput;
  }

  outpost::sync::SystemClock clock;
  if (request_id.empty()) request_id = outpost::node::new_request_id();

  if (*init) {
    if (g.data_dir.empty()) return report_error(g, Status::invalid("no data dir: pass --data DIR"));
    Status st = Ledger::init(g.data_dir, init_opts);
    if (!st.is_ok()) return report_error(g, st);
    auto l = Ledger::open(g.data_dir, clock);
    if (!l.is_ok()) return report_error(g, l.status());
    auto s = (*l)->status_json();
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
  auto run_reply = [&](const outpost::Result<Reply>& r) {
    return r.is_ok() ? print_reply(g, *r) : report_error(g, r.status());
  };

  if (*member) {
    if (*madd) {
      enroll.request_id = request_id;
      auto r = ledger.enroll(enroll);
      if (r.is_ok() && !r->refused && !g.json) {
        std::cout << "enrolled member " << r->body["member"].get<std::string>() << " card " << enroll.card
                  << " (op " << r->body["op"].get<std::string>() << ")" << (r->replayed ? " (repeated request)" : "") << "\n";
        return kExitOk;
      }
      return run_reply(r);
    }
    if (*mshow) {
      auto id = resolve();
      if (!id.is_ok()) return report_error(g, id.status());
      auto j = ledger.member_json(*id);
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
        auto j = ledger.member_json(id);
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
      return run_reply(ledger.update_profile(request_id, *id, fields));
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
    return run_reply(ledger.spend(request_id, *id, *amount, receipt));
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
    auto h = ledger.history_json(*id, limit);
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

  if (*status) {
    auto s = ledger.status_json();
    if (!s.is_ok()) return report_error(g, s.status());
    std::cout << (g.json ? s->dump() : s->dump(2)) << "\n";
    return kExitOk;
  }
  return kExitBadInput;
}
