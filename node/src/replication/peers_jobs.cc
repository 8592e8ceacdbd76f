// PeerManager, background work (peers_impl.h): the rebalancer's ticks, HQ's checkpoint signing,
// and re-reading documents another process wrote into the database. io thread; the work itself
// runs on the ledger worker or the checkpointer thread.
#include "outpost/node/audit_export.h"
#include "outpost/node/log.h"
#include "peers_impl.h"

namespace outpost::node {

void PeerManager::Impl::schedule_checkpoint() {
  if (config.role != "hq" || config.checkpoint.interval_ms == 0 || stopping) return;
  checkpoint_timer.expires_after(std::chrono::milliseconds(config.checkpoint.interval_ms));
  auto self = shared_from_this();
  checkpoint_timer.async_wait([self](const boost::system::error_code& ec) {
    if (ec || self->stopping) return;
    self->checkpoint_once();
  });
}

void PeerManager::Impl::checkpoint_once() {
  if (checkpoint_running) return schedule_checkpoint();
  checkpoint_running = true;
  std::weak_ptr<Impl> weak_self = shared_from_this();
  const std::string dir = config.data_dir;
  auto job = [weak_self, dir](bool cancelled) {
    auto self = weak_self.lock();
    if (cancelled || !self) return;
    auto r = hq_checkpoint(dir, self->clock);
    asio::post(self->io, [self, r = std::move(r)] {
      self->checkpoint_running = false;
      if (!r.is_ok()) {
        const bool no_root =
            r.status().code() == Code::kNotFound || r.status().code() == Code::kPermission;
        log(no_root ? LogLevel::kInfo : LogLevel::kWarn,
            no_root ? "no root key here: HQ checkpoints are signed where it is kept (outpost hq "
                      "checkpoint)"
                    : "cannot sign checkpoints",
            {{"reason", r.status().message()}});
        if (no_root) return;  // stop trying: the key will not appear while we run
        return self->schedule_checkpoint();
      }
      if ((*r)["tree_heads"].value("new", false)) {
        log(LogLevel::kInfo, "signed a new tree head set",
            {{"version", std::to_string((*r)["tree_heads"].value("version", 0))},
             {"checkpoints", std::to_string((*r).value("signed", 0))}});
        self->refresh_roster();  // also re-reads the tree head version on the worker
        self->pump_all();        // the worker runs the refresh first: sessions offer the new set
      }
      self->schedule_checkpoint();
    });
  };
  if (!checkpointer->submit(std::move(job))) checkpoint_running = false;
}

// The rebalancer: every rebalance.interval_ms, one bounded page of members on the worker; the
// move ops it makes are pushed to the peers at once.
void PeerManager::Impl::schedule_rebalance() {
  if (!config.rebalance.enabled) return;
  rebalance_timer.expires_after(std::chrono::milliseconds(config.rebalance.interval_ms));
  auto self = shared_from_this();
  rebalance_timer.async_wait([self](const boost::system::error_code& ec) {
    if (ec || self->stopping) return;
    self->rebalance_once();
    self->schedule_rebalance();
  });
}

void PeerManager::Impl::rebalance_once() {
  auto self = shared_from_this();
  auto moved = std::make_shared<std::size_t>(0);
  sync::RebalancePolicy policy;
  policy.idle_ms = config.rebalance.idle_ms;
  policy.recent_ms = config.rebalance.recent_ms;
  policy.keep_percent = config.rebalance.keep_percent;
  const std::size_t page = config.rebalance.members_per_tick;
  LedgerWorker::Task t;
  t.mutating = true;
  t.run = [self, moved, policy, page](Ledger& l) {
    auto r = l.rebalance(&self->rebalance_cursor, page, self->clock.now_ms(), policy);
    if (!r.is_ok()) {
      log(LogLevel::kWarn, "rebalancer failed", {{"reason", r.status().message()}});
      return;
    }
    for (const auto& m : *r) log(LogLevel::kInfo, "rebalancer moved idle rights", {{"move", m}});
    *moved = r->size();
  };
  t.done = [self, moved](bool durable) {
    if (durable && *moved > 0) asio::post(self->io, [self] { self->pump_all(); });
  };
  (void)worker.submit(std::move(t));  // a full queue skips one tick
}

// Picks up a roster or program rules another process wrote into the database (`outpost hq
// enroll`, `hq revoke`, `hq rules` on a running HQ): the links see a roster at once (a revoked
// peer's link closes) and the sessions offer both to their peers on the next pump.
void PeerManager::Impl::refresh_roster() {
  auto self = shared_from_this();
  LedgerWorker::Task t;
  t.run = [self](Ledger& ledger) {
    auto changed = ledger.refresh_roster();
    if (!changed.is_ok()) {
      log(LogLevel::kWarn, "cannot re-read the roster", {{"reason", changed.status().message()}});
    }
    auto rules = ledger.refresh_rules();
    if (!rules.is_ok()) {
      log(LogLevel::kWarn, "cannot re-read the program rules",
          {{"reason", rules.status().message()}});
    }
    auto heads = ledger.refresh_tree_heads();
    if (!heads.is_ok()) {
      log(LogLevel::kWarn, "cannot re-read HQ's tree head set",
          {{"reason", heads.status().message()}});
    }
    if (ledger.roster() != self->current_roster()) self->set_roster(ledger.roster());
  };
  (void)worker.submit(std::move(t));
}

}  // namespace outpost::node
