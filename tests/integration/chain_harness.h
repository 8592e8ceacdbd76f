// A chain of real outpostd processes on 127.0.0.1 for multi-node tests: HQ and N stores, each
// in its own temp dir, enrolled through the `outpost` CLI (as an operator would), with POS and
// admin terminals, started on ephemeral ports. Convergence is read through the CLI's --json
// output; every wait is a bounded poll. Test code only; not thread-safe.
#pragma once

#include <thread>

#include "outpostd_harness.h"

namespace outpost::test {

constexpr int kConvergePolls = 600;  // x 50 ms: gives up after ~30 s
constexpr auto kPoll = std::chrono::milliseconds(50);

struct ChainNode {
  std::unique_ptr<OutpostNode> node;
  std::string name;
  std::string pos_token;
  std::string admin_token;
};

class Chain {
 public:
  // Creates HQ and `stores` stores, enrolls them, and starts every daemon.
  testing::AssertionResult start(int stores) {
    hq_.name = "hq";
    hq_.node = std::make_unique<OutpostNode>(NodeOptions{"hq", "hq", "info", ""});
    if (auto r = hq_.node->cli({"hq", "init", "--name", "hq"}); !r.exit.exited_with(0)) {
      return testing::AssertionFailure() << "hq init: " << r.describe();
    }
    for (int i = 1; i <= stores; ++i) {
      if (auto r = enroll_store("store-" + std::to_string(i)); !r) return r;
    }
    if (auto r = add_terminals(hq_); !r) return r;
    if (auto r = start_node(hq_, ""); !r) return r;
    for (auto& s : stores_) {
      if (auto r = start_node(s, hq_peer()); !r) return r;
    }
    return testing::AssertionSuccess();
  }

  // Enrolls one more store through the CLI (HQ may be running) and adds its terminals; the
  // caller starts it.
  testing::AssertionResult enroll_store(const std::string& name) {
    ChainNode s;
    s.name = name;
    s.node = std::make_unique<OutpostNode>(NodeOptions{s.name, "store", "info", ""});
    const std::string req = s.node->dir() + "/request.json", enr = s.node->dir() + "/enroll.json";
    for (auto r : {s.node->cli({"init", "--name", s.name}), s.node->cli({"enroll-request", "--out", req}),
                   hq_.node->cli({"hq", "enroll", s.name, "--role", "store", "--request", req, "--out", enr}),
                   s.node->cli({"init", "--enroll", enr})}) {
      if (!r.exit.exited_with(0)) return testing::AssertionFailure() << "enrolling " << s.name << ": " << r.describe();
    }
    if (auto r = add_terminals(s); !r) return r;
    stores_.push_back(std::move(s));
    return testing::AssertionSuccess();
  }

  testing::AssertionResult add_terminals(ChainNode& n) {
    auto pos = n.node->add_terminal("till-1", "pos");
    auto admin = n.node->add_terminal("admin-1", "admin");
    if (!pos || !admin) return testing::AssertionFailure() << "terminal add on " << n.name;
    n.pos_token = *pos;
    n.admin_token = *admin;
    return testing::AssertionSuccess();
  }

  std::string hq_peer() { return "127.0.0.1:" + std::to_string(hq_.node->peer_port()); }

  testing::AssertionResult start_node(ChainNode& n, const std::string& hq_peer) {
    std::string cfg = "data_dir = \"data\"\nrole = \"" + std::string(n.name == "hq" ? "hq" : "store") +
                      "\"\nsync_interval_ms = 100\n[api]\nlisten = \"127.0.0.1:0\"\n[admin]\nlisten = "
                      "\"127.0.0.1:0\"\n[peer]\nlisten = \"127.0.0.1:" +
                      std::to_string(n.node->peer_port()) + "\"\n";
    if (!hq_peer.empty()) cfg += "[[peers]]\nname = \"hq\"\naddress = \"" + hq_peer + "\"\n";
    cfg += extra_config;
    write_file(n.node->config_path(), cfg);
    return n.node->start();
  }

  std::vector<ChainNode*> all() {
    std::vector<ChainNode*> v{&hq_};
    for (auto& s : stores_) v.push_back(&s);
    return v;
  }
  // TOML appended to every node's config (set before start()).
  std::string extra_config;
  ChainNode& hq() { return hq_; }
  ChainNode& store(int i) { return stores_.at(static_cast<std::size_t>(i - 1)); }

  HttpClient pos(ChainNode& n) { return HttpClient(n.node->api_port(), n.pos_token); }
  HttpClient admin(ChainNode& n) { return HttpClient(n.node->admin_port(), n.admin_token); }

  // The node's version vector, read through `outpost --json status` on its data dir.
  Json version_vector(ChainNode& n) {
    auto r = n.node->cli({"--json", "status"});
    if (!r.exit.exited_with(0)) return Json();
    Json j = Json::parse(r.out, nullptr, false);
    return j.is_discarded() ? Json() : j["version_vector"];
  }

  // Polls (bounded) until every node reports the same version vector; returns it or null.
  Json wait_converged() {
    for (int i = 0; i < kConvergePolls; ++i) {
      Json want = version_vector(hq_);
      bool same = !want.is_null();
      for (auto& s : stores_) same = same && version_vector(s) == want;
      if (same) return want;
      std::this_thread::sleep_for(kPoll);
    }
    return Json();
  }

  testing::AssertionResult wait_links(ChainNode& n, int want) {
    for (int i = 0; i < kConvergePolls; ++i) {
      auto r = admin(n).get("/admin/v1/node");
      if (r.status == 200 && r.json().value("links_up", 0) >= want) return testing::AssertionSuccess();
      std::this_thread::sleep_for(kPoll);
    }
    return testing::AssertionFailure() << n.name << " never had " << want << " links up";
  }

 private:
  ChainNode hq_;
  std::vector<ChainNode> stores_;
};

inline Json member_at(ChainNode& n, const std::string& card) {
  auto r = n.node->cli({"--json", "member", "show", card});
  return r.exit.exited_with(0) ? Json::parse(r.out, nullptr, false) : Json();
}

inline std::string rid(const std::string& tag) {
  static int n = 0;
  return "rt-" + tag + "-" + std::to_string(++n);
}

}  // namespace outpost::test
