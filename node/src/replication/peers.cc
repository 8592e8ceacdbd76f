// PeerManager's public calls (outpost/node/peers.h). The work is done by PeerManager::Impl, split
// by responsibility over the peers_*.cc files listed in peers_impl.h.
#include "outpost/node/peers.h"

#include "outpost/node/api.h"
#include "outpost/node/log.h"
#include "peers_impl.h"

namespace outpost::node {

PeerManager::PeerManager(asio::io_context& io, LedgerWorker& worker, const Config& config,
                         sync::Clock& clock, LinkContext context)
    : impl_(std::make_shared<Impl>(io, worker, config, clock, std::move(context))) {
  std::weak_ptr<Impl> weak = impl_;
  Ledger& ledger = worker.ledger_unsafe();
  impl_->on_roster_accepted = [weak] {
    // Runs on the worker thread right after a newer roster was accepted.
    if (auto self = weak.lock()) self->set_roster(self->worker.ledger_unsafe().roster());
  };
  impl_->set_roster(ledger.roster());
  ledger.set_verified_signatures(impl_->verified);
  impl_->self_id = ledger.node_id();
  impl_->ctx.options.keepalive_ms = static_cast<int>(config.link.keepalive_ms);
  // The worker has not started yet: reading the store here races with nothing.
  if (auto contacts = ledger.store().peer_contacts(); contacts.is_ok()) {
    impl_->contacts.load(*contacts);
  } else {
    log(LogLevel::kWarn, "cannot read peers' last contact",
        {{"reason", contacts.status().message()}});
  }
  std::weak_ptr<Impl> w2 = impl_;
  impl_->ctx.roster = [w2]() -> std::shared_ptr<const sync::Roster> {
    auto self = w2.lock();
    return self ? self->current_roster() : nullptr;
  };
  for (const auto& p : config.peers) {
    Slot s;
    s.cfg = p;
    if (s.cfg.name.empty()) s.cfg.name = p.address.to_string();
    impl_->slots.push_back(std::move(s));
  }
}

PeerManager::~PeerManager() {
  // Joined here, while impl_ is still held: a verifier job never drops the last reference.
  impl_->verifier->stop();
  impl_->verify_helper->stop();
  impl_->checkpointer->stop();
}

Status PeerManager::start() {
  auto self = impl_;
  auto l = LinkListener::listen(
      impl_->io, impl_->config.peer, impl_->ctx,
      [self](const std::shared_ptr<Link>& link) {
        if (self->partitioned || self->stopping) {
          link->close(Status::unavailable("partitioned by operator"));
          return;
        }
        self->attach(link, -1);
      },
      [self](const Status& reason, const std::string& address) {
        if (reason.code() == Code::kPermission) {
          self->alert(reason.message().find("revoked") != std::string::npos ? "revoked_peer"
                                                                            : "link_refused",
                      "", address + ": " + reason.message());
        }
      });
  if (!l.is_ok()) return l.status();
  impl_->listener = std::move(l).value();
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->listen_address = impl_->listener->local_endpoint().to_string();
  }
  for (std::size_t i = 0; i < impl_->slots.size(); ++i) impl_->dial(static_cast<int>(i));
  impl_->schedule_pump_timer();
  impl_->schedule_rebalance();
  impl_->schedule_checkpoint();
  return Status::ok();
}

void PeerManager::stop() {
  impl_->stopping = true;
  impl_->verifier->stop();  // before the helper: a running preverify waits for the helper
  impl_->verify_helper->stop();
  impl_->pump_timer.cancel();
  impl_->rebalance_timer.cancel();
  impl_->checkpoint_timer.cancel();
  impl_->checkpointer->stop();
  if (impl_->listener) impl_->listener->close();
  for (auto& s : impl_->slots) {
    if (s.timer) s.timer->cancel();
  }
  std::vector<std::shared_ptr<Conn>> all;
  std::vector<storage::PeerContact> rows;
  const std::uint64_t now = impl_->clock.now_ms();
  for (auto& [id, c] : impl_->conns) {
    all.push_back(c);
    rows.push_back({c->peer, static_cast<std::int64_t>(Impl::last_frame_ms(*c, now)),
                    static_cast<std::int64_t>(now)});
  }
  impl_->persist_contacts(std::move(rows));  // the worker drains its queue before the daemon exits
  for (auto& c : all) c->link->close(Status::ok());
  impl_->broker_timer.cancel();
}

Endpoint PeerManager::local_endpoint() const {
  return impl_->listener ? impl_->listener->local_endpoint() : impl_->config.peer;
}

void PeerManager::notify_local_write() {
  auto self = impl_;
  asio::post(impl_->io, [self] { self->pump_all(); });
}

void PeerManager::request_rights(const sync::MemberId& member, sync::Account account,
                                 std::uint64_t amount, const sync::RightsView& rights_elsewhere,
                                 std::function<void(bool, bool)> done) {
  auto self = impl_;
  asio::post(impl_->io, [self, member, account, amount, view = rights_elsewhere,
                         done = std::move(done)]() mutable {
    self->request_rights(member, account, amount, view, std::move(done));
  });
}

bool PeerManager::handle_admin(const HttpRequest& req, const Responder& respond,
                               const Authorize& authorize) {
  auto self = impl_;
  if (req.path == "/admin/v1/peers" && req.method == "GET") {
    authorize(req, respond, [self, respond] {
      asio::post(self->io, [self, respond] {
        respond(HttpResponse{200, self->peers_json().dump()});
      });
    });
    return true;
  }
  if (req.path == "/admin/v1/links" && req.method == "POST") {
    // The admin token is confirmed before this is called (Api::handle_admin); the body is
    // checked strictly, as every API body is: one object, only "state", a string.
    auto body = parse_json_object(req.body);
    Status st = body.is_ok() ? check_fields(*body, {"state"}) : body.status();
    auto state_field = st.is_ok() ? string_field(*body, "state", true) : Result<std::string>(st);
    const std::string state = state_field.is_ok() ? *state_field : "";
    if (state != "up" && state != "down") {
      std::string why = state_field.is_ok() ? "" : state_field.status().message() + ": ";
      respond(http_error(400, "invalid_argument",
                         why + "body must be {\"state\": \"up\"} or {\"state\": \"down\"}"));
      return true;
    }
    authorize(req, respond, [self, respond, state] {
      asio::post(self->io, [self, respond, state] {
        self->set_partitioned(state == "down");
        respond(HttpResponse{200, Json{{"partitioned", self->partitioned}}.dump()});
      });
    });
    return true;
  }
  return false;
}

void PeerManager::node_info(Json& out) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  out["peer_listen"] = impl_->listen_address;
  out["links_up"] = impl_->links_up;
  out["partitioned"] = impl_->partitioned_view;
}

}  // namespace outpost::node
