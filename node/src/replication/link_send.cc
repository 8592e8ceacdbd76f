// Link::Impl's send path, watchdog and close (the design is in link.cc's opening comment).
#include <algorithm>
#include <cstring>
#include <utility>

#include "link_impl.h"

namespace outpost::node {

void Link::Impl::enqueue(Outgoing item) {
  // Invariant: frames sealed outside the queue (handshake messages, the responder's confirming
  // ping or its refusal) are all queued before the handshake completes, so no message sealed
  // later from the queue can overtake them with a smaller nonce.
  OUTPOST_CHECK(item.kind != Outgoing::Kind::kWire || !handshake_done_);
  last_tx_ = steady_now(context_);
  send_queue_.push_back(std::move(item));
  if (!writing_) do_write();
}

// Fills the write batch from the front of the send queue and writes it.
void Link::Impl::do_write() {
  if (closed_) return;
  write_batch_bytes_ = 0;
  write_batch_written_ = 0;
  if (Status st = fill_write_batch(); !st.is_ok()) return close_now(st);
  if (write_batch_bytes_ == 0) {
    writing_ = false;
    if (closing_) close_now(close_reason_);
    return;
  }
  writing_ = true;
  last_write_progress_ = steady_now(context_);
  write_some();
}

void Link::Impl::write_some() {
  socket_.async_write_some(asio::buffer(write_batch_.get() + write_batch_written_,
                                        write_batch_bytes_ - write_batch_written_),
                           [self = shared_from_this()](const boost::system::error_code& ec,
                                                       std::size_t n) { self->on_write(ec, n); });
}

void Link::Impl::on_write(const boost::system::error_code& ec, std::size_t n) {
  if (closed_) return;
  if (ec) return close_now(Status::unavailable("write failed: " + ec.message()));
  wire_bytes_sent_.fetch_add(n, std::memory_order_relaxed);
  last_write_progress_ = steady_now(context_);
  write_batch_written_ += n;
  if (write_batch_written_ < write_batch_bytes_) return write_some();
  do_write();
}

// Seals queued items into the write batch until it is full or the queue is empty. An error
// is the channel's (nonce exhaustion, a message over its bound): the link closes.
Status Link::Impl::fill_write_batch() {
  if (!write_batch_)
    write_batch_ = std::make_unique_for_overwrite<std::uint8_t[]>(kWriteBatchBytes);
  while (!send_queue_.empty()) {
    Outgoing& item = send_queue_.front();
    const std::span<std::uint8_t> room(write_batch_.get() + write_batch_bytes_,
                                       kWriteBatchBytes - write_batch_bytes_);
    bool done = false;
    switch (item.kind) {
      case Outgoing::Kind::kWire: {
        const std::size_t n = std::min(item.bytes.size() - item.offset, room.size());
        std::memcpy(room.data(), item.bytes.data() + item.offset, n);
        item.offset += n;
        write_batch_bytes_ += n;
        done = item.offset == item.bytes.size();
        break;
      }
      case Outgoing::Kind::kMessage: {
        // The message is ours now: the channel encrypts straight from it into the batch.
        OUTPOST_ASSIGN_OR_RETURN(std::size_t n,
                                 channel_.seal_message_frames(item.bytes, item.offset, room, done));
        write_batch_bytes_ += n;
        break;
      }
      case Outgoing::Kind::kPing:
      case Outgoing::Kind::kClose: {
        if (room.size() < sync::kFrameOverheadBytes + limits::kLinkCloseReasonBytesMax) break;
        Bytes frame;
        const std::string_view reason(reinterpret_cast<const char*>(item.bytes.data()),
                                      item.bytes.size());
        OUTPOST_RETURN_IF_ERROR(item.kind == Outgoing::Kind::kPing
                                    ? channel_.send_ping(frame)
                                    : channel_.send_close(reason, frame));
        std::memcpy(room.data(), frame.data(), frame.size());
        write_batch_bytes_ += frame.size();
        done = true;
        break;
      }
    }
    if (!done) break;  // the batch is full: the rest goes in the next one
    if (item.accounted > 0) queued_bytes_.fetch_sub(item.accounted);
    send_queue_.pop_front();
  }
  return Status::ok();
}

void Link::Impl::send_on_strand(Bytes message) {
  const std::size_t n = message.size();
  if (closed_ || closing_) {
    queued_bytes_.fetch_sub(n);
    return;
  }
  enqueue(Outgoing::message(std::move(message)));
}

void Link::Impl::arm_watchdog() {
  timer_.expires_after(tick_);
  timer_.async_wait([self = shared_from_this()](const boost::system::error_code&) {
    if (self->closed_) return;
    self->on_tick();
    if (!self->closed_) self->arm_watchdog();
  });
}

void Link::Impl::on_tick() {
  const auto now = steady_now(context_);
  const LinkOptions& o = context_.options;
  if (closing_ && now >= closing_deadline_) return close_now(close_reason_);
  if (!handshake_done_) {
    if (now >= handshake_deadline_) {
      close_now(Status::unavailable("handshake timed out after " +
                                    std::to_string(o.handshake_timeout_ms) + " ms"));
    }
    return;
  }
  if (closing_) return;
  if (Status st = check_still_admitted(); !st.is_ok()) return close_gracefully(st);
  if (now - last_rx_ > ms(o.idle_timeout_ms)) {
    return close_now(Status::unavailable("idle timeout: nothing received for " +
                                         std::to_string(o.idle_timeout_ms) + " ms"));
  }
  if (writing_ && now - last_write_progress_ > ms(o.idle_timeout_ms)) {
    return close_now(Status::unavailable("write stalled for " + std::to_string(o.idle_timeout_ms) +
                                         " ms: the peer stopped reading"));
  }
  if (now - last_tx_ >= ms(o.keepalive_ms)) enqueue(Outgoing::ping());
}

// A roster accepted while the link is open may revoke the peer: then the link ends.
Status Link::Impl::check_still_admitted() {
  std::shared_ptr<const sync::Roster> roster = context_.roster ? context_.roster() : nullptr;
  if (!roster || roster->version == roster_version_checked_) return Status::ok();
  roster_version_checked_ = roster->version;
  if (const sync::Revocation* rev = roster->revocation(peer_.node_id)) {
    return Status::permission("peer revoked in roster v" + std::to_string(roster->version) +
                              " (after seq " + std::to_string(rev->after_seq) + ")");
  }
  return Status::ok();
}

void Link::Impl::close_gracefully(const Status& reason) {
  if (closed_ || closing_) return;
  if (!handshake_done_ || !channel_.is_open()) return close_now(reason);
  close_after_flush(reason, Outgoing::close(reason.is_ok() ? "closed" : reason.to_string()));
}

// Writes `last` after everything queued, then closes with `reason` (bounded by the linger).
void Link::Impl::close_after_flush(const Status& reason, Outgoing last) {
  closing_ = true;
  open_.store(false);
  close_reason_ = reason;
  closing_deadline_ =
      steady_now(context_) + ms(std::min(kCloseLingerMsMax, context_.options.idle_timeout_ms));
  enqueue(std::move(last));
}

void Link::Impl::close_now(const Status& reason) {
  if (closed_) return;
  closed_ = true;
  open_.store(false);
  channel_.abort();
  boost::system::error_code ec;
  timer_.cancel();
  socket_.shutdown(tcp::socket::shutdown_both, ec);
  socket_.close(ec);
  send_queue_.clear();
  pending_.clear();
  queued_bytes_.store(0);
  const bool failed = !reason.is_ok();
  log(failed && reason.code() != Code::kUnavailable ? LogLevel::kWarn : LogLevel::kInfo,
      handshake_done_ ? "link closed" : "link handshake failed",
      {{"peer", describe()}, {"address", address_}, {"reason", reason.to_string()}});
  if (!handshake_done_) {
    auto done = std::move(on_handshake_);
    on_handshake_ = nullptr;
    if (done) done(reason, nullptr);
    return;
  }
  auto on_close = std::move(on_close_);
  on_close_ = nullptr;
  on_message_ = nullptr;
  if (handlers_set_ && on_close) {
    on_close(reason);
  } else {
    close_reason_ = reason;  // reported when set_handlers() comes
  }
}

}  // namespace outpost::node
