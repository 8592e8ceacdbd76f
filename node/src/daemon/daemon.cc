#include "outpost/node/daemon.h"

#include <boost/asio.hpp>
#include <filesystem>
#include <fstream>
#include <optional>

#include "outpost/node/analytics.h"
#include "outpost/node/api.h"
#include "outpost/node/backup.h"
#include "outpost/node/http.h"
#include "outpost/node/identity.h"
#include "outpost/node/log.h"
#include "outpost/node/peers.h"
#include "outpost/node/worker.h"

namespace outpost::node {

namespace asio = boost::asio;

struct Daemon::Impl {
  Config config;
  sync::Clock& clock;
  asio::io_context io;
  std::unique_ptr<LedgerWorker> worker;
  std::unique_ptr<Api> api;
  std::unique_ptr<HttpServer> pos_server;
  std::unique_ptr<HttpServer> admin_server;
  std::unique_ptr<PeerManager> peers;
  std::unique_ptr<analytics::SinkThread> analytics;  // HQ with [analytics] only
  asio::signal_set signals{io, SIGTERM, SIGINT};
  std::optional<DataDirLock> lock;  // held for the daemon's lifetime
  bool stopping = false;

  Impl(Config c, sync::Clock& clk) : config(std::move(c)), clock(clk) {}

  void shutdown(const std::string& why) {
    if (stopping) return;
    stopping = true;
    log(LogLevel::kInfo, "shutting down", {{"reason", why}});
    if (pos_server) pos_server->close();
    if (admin_server) admin_server->close();
    if (peers) peers->stop();
    signals.cancel();
    // Let in-flight HTTP requests finish: poll until no connection is open (bounded).
    auto timer = std::make_shared<asio::steady_timer>(io);
    const std::uint64_t deadline_ms = clock.steady_ms() + 5000;
    auto check = std::make_shared<std::function<void()>>();
    // The function holds itself only weakly (a strong self-capture is a cycle that leaks); the
    // pending wait keeps it alive between polls.
    std::weak_ptr<std::function<void()>> weak = check;
    *check = [this, timer, deadline_ms, weak]() {
      std::size_t open = (pos_server ? pos_server->open_connections() : 0) +
                         (admin_server ? admin_server->open_connections() : 0);
      if (open == 0 || clock.steady_ms() > deadline_ms) {
        io.stop();
        return;
      }
      timer->expires_after(std::chrono::milliseconds(20));
      timer->async_wait([self = weak.lock()](const boost::system::error_code&) {
        if (self) (*self)();
      });
    };
    (*check)();
  }
};

namespace {

// The ClickHouse sink on its own thread and Store connection (docs/analytics.md): it never
// queues work on the ledger worker, so a slow or absent ClickHouse cannot hold replication back.
Status start_analytics(const Config& config, sync::Clock& clock,
                       std::unique_ptr<analytics::SinkThread>& out) {
  const AnalyticsConfig& a = config.analytics;
  if (a.clickhouse_url.empty()) return Status::ok();
  OUTPOST_ASSIGN_OR_RETURN(net::Endpoint ep, analytics::parse_clickhouse_url(a.clickhouse_url));
  analytics::SinkOptions o;
  o.endpoint = ep;
  o.database = a.database;
  o.batch_ops = a.batch_ops;
  o.behind_alert_ops = a.behind_alert_ops;
  out = std::make_unique<analytics::SinkThread>(
      (std::filesystem::path(config.data_dir) / kDbFile).string(), o, clock, a.idle_ms);
  out->start();
  log(LogLevel::kInfo, "analytics: streaming to clickhouse",
      {{"clickhouse", ep.to_string()}, {"database", a.database}});
  return Status::ok();
}

}  // namespace

Daemon::Daemon(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Daemon::~Daemon() {
  if (impl_->analytics) impl_->analytics->stop();
  if (impl_->worker) impl_->worker->stop();
}

Result<std::unique_ptr<Daemon>> Daemon::create(const Config& config, sync::Clock& clock) {
  auto impl = std::make_unique<Impl>(config, clock);
  OUTPOST_ASSIGN_OR_RETURN(auto ledger, Ledger::open(config.data_dir, clock));
  OUTPOST_ASSIGN_OR_RETURN(auto role, ledger->store().get_meta("role"));
  if (role.value_or("store") != config.role) {
    return Status::invalid("config: 'role' is " + config.role + " but the data dir belongs to a " + role.value_or("store") + " node");
  }
  set_log_node(ledger->node_name());
  impl->worker = std::make_unique<LedgerWorker>(std::move(ledger));
  impl->api = std::make_unique<Api>(*impl->worker, clock);
  impl->api->set_report_reader([dir = config.data_dir] { return open_data_dir_store(dir); });
  Ledger& l = impl->worker->ledger_unsafe();
  auto identity = load_identity(config.data_dir, l.store());
  if (identity.is_ok()) {
    auto ctx = make_link_context(*identity, nullptr);  // the PeerManager supplies the roster
    impl->peers = std::make_unique<PeerManager>(impl->io, *impl->worker, config, clock, std::move(ctx));
    PeerManager* pm = impl->peers.get();
    Api* api = impl->api.get();
    api->set_admin_extension([pm, api](const HttpRequest& req, const Responder& respond) {
      return pm->handle_admin(req, respond, [api](const HttpRequest& r, const Responder& s, std::function<void()> ok) {
        api->authorized(r, s, "admin", std::move(ok));
      });
    });
    api->set_node_info([pm](Json& j) { pm->node_info(j); });
    api->set_rights_broker([pm](const sync::MemberId& m, sync::Account a, std::uint64_t amount,
                                const sync::RightsView& elsewhere,
                                std::function<void(bool, bool)> done) {
      pm->request_rights(m, a, amount, elsewhere, std::move(done));
    });
  } else if (identity.status().code() == Code::kNotFound) {
    log(LogLevel::kWarn, "node is not enrolled in a chain; replication is off", {{"detail", identity.status().message()}});
  } else {
    return identity.status();
  }
  return std::unique_ptr<Daemon>(new Daemon(std::move(impl)));
}

Status Daemon::start() {
  Impl& d = *impl_;
  // One daemon per data dir, and no restore under a running daemon (docs/operations.md). Taken
  // here, not in create(), so that `outpostd --check` works beside a running daemon.
  OUTPOST_ASSIGN_OR_RETURN(DataDirLock lock, DataDirLock::acquire(d.config.data_dir));
  d.lock.emplace(std::move(lock));
  Api* api = d.api.get();
  OUTPOST_ASSIGN_OR_RETURN(d.pos_server,
                           HttpServer::listen(d.io, d.config.api, "pos",
                                              [api](const HttpRequest& r, const Responder& s) {
                                                api->handle_pos(r, s);
                                              }));
  OUTPOST_ASSIGN_OR_RETURN(d.admin_server,
                           HttpServer::listen(d.io, d.config.admin, "admin",
                                              [api](const HttpRequest& r, const Responder& s) {
                                                api->handle_admin(r, s);
                                              }));
  d.worker->start();
  if (d.peers) OUTPOST_RETURN_IF_ERROR(d.peers->start());
  OUTPOST_RETURN_IF_ERROR(start_analytics(d.config, d.clock, d.analytics));
  std::string ports_file = d.config.ports_file.empty() ? (std::filesystem::path(d.config.data_dir) / "outpostd.ports").string()
                                                       : d.config.ports_file;
  std::string line = "api=" + api_endpoint().to_string() + " admin=" + admin_endpoint().to_string() +
                     " peer=" + peer_endpoint().to_string() + " pid=" + std::to_string(::getpid()) + "\n";
  std::string tmp = ports_file + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << line;
    if (!out) return Status::io_error("cannot write ports file " + ports_file);
  }
  std::filesystem::rename(tmp, ports_file);
  log(LogLevel::kInfo, "listening", {{"api", api_endpoint().to_string()}, {"admin", admin_endpoint().to_string()},
                                     {"peer", peer_endpoint().to_string()}, {"role", d.config.role}});
  return Status::ok();
}

void Daemon::run() {
  Impl& d = *impl_;
  d.signals.async_wait([this](const boost::system::error_code& ec, int sig) {
    if (!ec) impl_->shutdown(sig == SIGTERM ? "SIGTERM" : "SIGINT");
  });
  d.io.run();
  if (d.analytics) d.analytics->stop();
  // Drain the worker: every queued request finishes and becomes durable before exit.
  d.worker->stop();
  Status st = d.worker->ledger_unsafe().store().checkpoint_wal();
  if (!st.is_ok()) log(LogLevel::kWarn, "checkpoint at shutdown failed", {{"error", st.to_string()}});
  log(LogLevel::kInfo, "stopped");
}

void Daemon::stop() {
  asio::post(impl_->io, [this] { impl_->shutdown("stop requested"); });
}

Endpoint Daemon::api_endpoint() const { return impl_->pos_server ? impl_->pos_server->local_endpoint() : Endpoint{}; }
Endpoint Daemon::admin_endpoint() const { return impl_->admin_server ? impl_->admin_server->local_endpoint() : Endpoint{}; }
Endpoint Daemon::peer_endpoint() const {
  return impl_->peers ? impl_->peers->local_endpoint() : impl_->config.peer;
}

}  // namespace outpost::node
