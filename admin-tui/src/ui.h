// The interactive screen of outpost-top (ncursesw): overview, node detail, member and alerts
// views over one node's admin API, refreshed on an interval, drawn with erase()+refresh() so
// ncurses sends only what changed. Owns the terminal between start and the end of run(); the
// caller restores it on every other exit path (restore_terminal() is idempotent and safe to
// call from atexit). Single-threaded.
#pragma once

#include <csignal>
#include <cstdint>
#include <string>

#include "outpost/tui/admin_client.h"

namespace outpost::tui {

struct UiOptions {
  int interval_ms = 1000;
  bool color = true;
};

// How a session ended, for the exit message and code.
struct UiOutcome {
  FetchError last_error = FetchError::kNone;  // the state of the last refresh
  std::string last_message;
  int signal = 0;             // the signal that ended it, or 0 when the user quit
  std::string terminal_error;  // set when the terminal could not be opened
};

// Runs the screen until `q` or until *stop becomes non-zero (a signal handler sets it to the
// signal number). Returns how it ended; the terminal is restored before it returns.
UiOutcome run_ui(const AdminClient& client, const UiOptions& options, volatile std::sig_atomic_t* stop);

// Ends curses mode if it is active. Idempotent; registered with atexit by main.
void restore_terminal();

}  // namespace outpost::tui
