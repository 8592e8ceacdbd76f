#include "ui.h"

#include <curses.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <optional>
#include <vector>

namespace outpost::tui {

namespace {

bool g_curses_active = false;

// Color pairs (only used when colors are on).
constexpr short kPairProblem = 1;
constexpr short kPairTitle = 2;
constexpr short kPairStatus = 3;
constexpr short kPairGood = 4;

// Longest text the search/filter prompt accepts (a card or phone is far shorter).
constexpr std::size_t kPromptCharsMax = 64;
// How long getch() waits per loop when no refresh is due: bounds the key latency.
constexpr int kKeyPollMs = 100;
// How often the roster (names, certificates, every enrolled node) is fetched again.
constexpr std::uint64_t kRosterRefreshMs = 30'000;

std::uint64_t wall_ms() {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count());
}

enum class View { kOverview, kDetail, kMember, kAlerts };
enum class Prompt { kNone, kFilter, kMember, kAlertFilter };

class Screen {
 public:
  Screen(const AdminClient& client, const UiOptions& options) : client_(client), options_(options) {}

  void refresh_data();
  void draw();
  // Returns false when the user asked to quit.
  bool on_key(int ch);

  const UiOutcome& outcome() const { return outcome_; }

 private:
  void draw_overview(int top, int bottom);
  void draw_lines(const std::vector<std::string>& lines, int top, int bottom, int* scroll, int fixed_head);
  void draw_help();
  void draw_status_line();
  void put(int y, const std::string& text, attr_t attr = A_NORMAL);
  attr_t problem_attr() const { return options_.color ? (COLOR_PAIR(kPairProblem) | A_BOLD) : A_BOLD; }
  attr_t title_attr() const { return options_.color ? (COLOR_PAIR(kPairTitle) | A_BOLD) : A_REVERSE; }
  std::string refreshed_text() const;
  void search_member(const std::string& query);
  void refresh_member();
  const NodeRow* selected_row() const;
  void move_selection(int delta);
  bool on_prompt_key(int ch);

  const AdminClient& client_;
  UiOptions options_;
  UiOutcome outcome_;

  std::optional<Overview> overview_;
  std::optional<AlertsView> alerts_;
  LinkMemory memory_;
  Json roster_;                // the last roster answer, reused between roster fetches
  std::uint64_t roster_ms_ = 0;  // when it was fetched (0: never)
  std::uint64_t last_ok_ms_ = 0;
  std::uint64_t disconnected_since_ms_ = 0;  // 0 while the last refresh worked

  View view_ = View::kOverview;
  bool help_ = false;
  Prompt prompt_ = Prompt::kNone;
  std::string prompt_text_;
  std::string filter_;
  std::string alert_filter_;
  std::string selected_key_;
  int overview_scroll_ = 0;
  int detail_scroll_ = 0;
  int member_scroll_ = 0;
  int alerts_scroll_ = 0;

  std::string member_query_;
  std::string member_id_;
  std::optional<MemberView> member_;
  std::vector<std::string> member_matches_;
  std::string member_error_;
};

void Screen::put(int y, const std::string& text, attr_t attr) {
  if (y < 0 || y >= LINES || COLS <= 0) return;
  // The bottom-right cell is left empty: writing it would scroll on some terminals.
  std::size_t width = static_cast<std::size_t>(y == LINES - 1 ? std::max(COLS - 1, 0) : COLS);
  std::string line = fit(text, width);
  if (attr != A_NORMAL) attron(attr);
  mvaddstr(y, 0, line.c_str());
  if (attr != A_NORMAL) attroff(attr);
}

std::string Screen::refreshed_text() const {
  if (!last_ok_ms_) return "never";
  std::string s = format_clock(last_ok_ms_);
  if (disconnected_since_ms_) s += " (stale)";
  return s;
}

void Screen::refresh_data() {
  std::uint64_t now = wall_ms();
  // The roster changes only on enrollment or revocation and costs the node signature checks:
  // fetch it now and then, not every refresh.
  bool with_roster = !roster_ms_ || now - roster_ms_ >= kRosterRefreshMs || now < roster_ms_;
  FetchResult r = client_.fetch_snapshot(with_roster);
  if (r.ok() && with_roster) {
    roster_ = r.snapshot.roster;
    roster_ms_ = now;
  } else if (r.ok()) {
    r.snapshot.roster = roster_;
  }
  if (r.ok()) {
    Parsed<Overview> o = build_overview(r.snapshot, memory_);
    if (!o.ok()) {
      r.error = FetchError::kBadResponse;
      r.message = client_.endpoint().to_string() + ": " + o.error;
    } else {
      remember_links(*o.value, &memory_);
      overview_ = std::move(o.value);
      Parsed<AlertsView> a = parse_alerts(r.snapshot.alerts);
      if (a.ok()) {
        alerts_ = std::move(a.value);
      } else if (r.snapshot.alerts.is_null()) {
        alerts_.reset();
      }
    }
  }
  outcome_.last_error = r.error;
  outcome_.last_message = r.message;
  if (r.ok()) {
    last_ok_ms_ = now;
    disconnected_since_ms_ = 0;
    if (view_ == View::kMember && !member_id_.empty()) refresh_member();
  } else if (!disconnected_since_ms_) {
    disconnected_since_ms_ = now;
  }
}

void Screen::search_member(const std::string& query) {
  member_query_ = query;
  member_.reset();
  member_matches_.clear();
  member_id_.clear();
  member_error_.clear();
  member_scroll_ = 0;
  if (query.empty()) return;
  MemberResult m = client_.find_member(query);
  if (m.error != FetchError::kNone) {
    member_error_ = m.message;
    return;
  }
  member_matches_ = m.matches;
  Parsed<MemberView> p = parse_member(m.member, overview_ ? overview_->names : std::map<std::string, std::string>{});
  if (!p.ok()) {
    member_error_ = p.error;
    return;
  }
  member_id_ = p.value->id;
  member_ = std::move(p.value);
}

void Screen::refresh_member() {
  MemberResult m = client_.find_member(member_id_);
  if (m.error != FetchError::kNone) {
    member_error_ = m.message;
    return;
  }
  Parsed<MemberView> p = parse_member(m.member, overview_ ? overview_->names : std::map<std::string, std::string>{});
  if (p.ok()) {
    member_ = std::move(p.value);
    member_error_.clear();
  } else {
    member_error_ = p.error;
  }
}

const NodeRow* Screen::selected_row() const {
  if (!overview_) return nullptr;
  auto rows = filter_rows(*overview_, filter_);
  for (const NodeRow* r : rows) {
    if (r->key() == selected_key_) return r;
  }
  return rows.empty() ? nullptr : rows.front();
}

void Screen::move_selection(int delta) {
  if (!overview_) return;
  auto rows = filter_rows(*overview_, filter_);
  if (rows.empty()) return;
  int index = 0;
  for (std::size_t i = 0; i < rows.size(); ++i) {
    if (rows[i]->key() == selected_key_) index = static_cast<int>(i);
  }
  index = std::clamp(index + delta, 0, static_cast<int>(rows.size()) - 1);
  selected_key_ = rows[static_cast<std::size_t>(index)]->key();
}

void Screen::draw_overview(int top, int bottom) {
  const Overview& o = *overview_;
  std::size_t width = static_cast<std::size_t>(COLS);
  put(top, overview_title_line(width), A_BOLD | A_UNDERLINE);
  auto rows = filter_rows(o, filter_);
  const NodeRow* sel = selected_row();
  if (sel) selected_key_ = sel->key();
  // The last line above the status line: the selected row's behind total per origin, so the
  // breakdown is on screen at any width (the BEHIND BY ORIGIN column needs a wide terminal).
  if (sel && bottom - top > 2) {
    put(bottom - 1, selected_row_summary(o, *sel, width), A_BOLD);
    --bottom;
  }
  int visible = bottom - top - 1;
  if (visible <= 0) return;
  int sel_index = 0;
  for (std::size_t i = 0; i < rows.size(); ++i) {
    if (rows[i] == sel) sel_index = static_cast<int>(i);
  }
  if (sel_index < overview_scroll_) overview_scroll_ = sel_index;
  if (sel_index >= overview_scroll_ + visible) overview_scroll_ = sel_index - visible + 1;
  overview_scroll_ = std::clamp(overview_scroll_, 0, std::max(0, static_cast<int>(rows.size()) - visible));
  for (int i = 0; i < visible && overview_scroll_ + i < static_cast<int>(rows.size()); ++i) {
    const NodeRow* r = rows[static_cast<std::size_t>(overview_scroll_ + i)];
    attr_t attr = A_NORMAL;
    if (r->problem()) {
      attr = problem_attr();
    } else if (options_.color && (r->link == "connected" || r->link == "self")) {
      attr = COLOR_PAIR(kPairGood);
    }
    if (r == sel) attr |= A_REVERSE;
    put(top + 1 + i, overview_row_line(o, *r, width), attr);
  }
  if (rows.empty()) put(top + 1, "  no node matches the filter '" + filter_ + "' (Esc clears it)");
}

void Screen::draw_lines(const std::vector<std::string>& lines, int top, int bottom, int* scroll, int fixed_head) {
  int visible = bottom - top;
  if (visible <= 0) return;
  int head = std::min<int>(fixed_head, static_cast<int>(lines.size()));
  for (int i = 0; i < head && i < visible; ++i) put(top + i, lines[static_cast<std::size_t>(i)], i == 0 ? A_BOLD : A_NORMAL);
  int body_rows = visible - head;
  int body = static_cast<int>(lines.size()) - head;
  *scroll = std::clamp(*scroll, 0, std::max(0, body - body_rows));
  for (int i = 0; i < body_rows && head + *scroll + i < static_cast<int>(lines.size()); ++i) {
    const std::string& l = lines[static_cast<std::size_t>(head + *scroll + i)];
    attr_t attr = A_NORMAL;
    if (l.rfind("  ! ", 0) == 0) attr = problem_attr();
    // Section titles start in column 0 with a capital letter.
    if (!l.empty() && l[0] >= 'A' && l[0] <= 'Z') attr = A_BOLD;
    put(top + head + i, l, attr);
  }
}

void Screen::draw_help() {
  static const char* kHelp[] = {
      "outpost-top keys",
      "",
      "  ?          this help (any key closes it)",
      "  q          quit",
      "  Tab        next view: overview, member, alerts (Shift-Tab: previous)",
      "  Up/Down    select a node, or scroll (also k/j, PgUp/PgDn, Home/End)",
      "  Enter      node detail: version vector, link history, recent errors",
      "  Esc        back to the overview; clears a filter; cancels a prompt",
      "  /          overview: filter nodes ('!' = problem rows); member: search;",
      "             alerts: filter by kind, node or text",
      "  m          member view: search by card, phone (+...) or 32-hex id",
      "  a          alerts view, newest first, with counts",
      "  r          refresh now",
      "",
      "Overview: BEHIND = ops the viewed node holds that the row's node lacks",
      "(~N: from its version vector last seen before its link dropped); PEND = ops",
      "the row's node holds that the viewed node lacks; ! marks a problem row.",
      "The line above the status line splits the selected row's BEHIND per origin.",
  };
  int n = static_cast<int>(sizeof kHelp / sizeof kHelp[0]);
  int top = std::max(0, (LINES - n) / 2 - 1);
  for (int i = 0; i < n && top + i < LINES - 1; ++i) put(top + i, std::string("  ") + kHelp[i], i == 0 ? A_BOLD : A_NORMAL);
}

void Screen::draw_status_line() {
  int y = LINES - 1;
  if (prompt_ != Prompt::kNone) {
    const char* label = prompt_ == Prompt::kMember ? "member (card, +phone or id): "
                        : prompt_ == Prompt::kFilter ? "filter nodes: "
                                                     : "filter alerts: ";
    std::string text = std::string(label) + prompt_text_;
    put(y, text + "_   (Enter ok, Esc cancel)", A_BOLD);
    return;
  }
  if (disconnected_since_ms_) {
    std::string what = outcome_.last_error == FetchError::kUnreachable
                           ? "disconnected since " + format_clock(disconnected_since_ms_) + ", retrying"
                           : describe(outcome_.last_error) + " since " + format_clock(disconnected_since_ms_) +
                                 ", retrying";
    attr_t attr = options_.color ? (COLOR_PAIR(kPairStatus) | A_BOLD) : (A_BOLD | A_REVERSE);
    put(y, what + ": " + outcome_.last_message, attr);
    return;
  }
  static const char* kViews[] = {"Overview", "Detail", "Member", "Alerts"};
  std::string hint = std::string("[") + kViews[static_cast<int>(view_)] + "] ? help  q quit  Enter detail  / " +
                     (view_ == View::kMember ? "search" : "filter") + "  m member  a alerts  Tab view";
  if (view_ == View::kOverview && !filter_.empty()) hint = "filter '" + filter_ + "'  " + hint;
  put(y, hint, A_DIM);
}

void Screen::draw() {
  erase();
  if (LINES < 3 || COLS < 20) {
    put(0, "terminal too small");
    refresh();
    return;
  }
  std::size_t width = static_cast<std::size_t>(COLS);
  int top = 0;
  if (overview_) {
    auto head = overview_header(*overview_, refreshed_text());
    put(0, head[0], title_attr());
    put(1, head[1], overview_->partitioned ? problem_attr() : A_NORMAL);
    top = 2;
  } else {
    put(0, "outpost-top  " + client_.endpoint().to_string(), title_attr());
    top = 1;
  }
  int bottom = LINES - 1;  // the status line
  if (help_) {
    draw_help();
  } else if (!overview_) {
    if (!disconnected_since_ms_) {
      put(top + 1, "  connecting to " + client_.endpoint().to_string() + " ...");
    } else {
      put(top + 1, "  cannot show the chain:");
      // Wrap the error over a few lines so that it is readable in 80 columns.
      const std::string& m = outcome_.last_message;
      std::size_t w = width > 6 ? width - 4 : width;
      int y = top + 2;
      for (std::size_t pos = 0; pos < m.size() && y < bottom; pos += w, ++y) put(y, "  " + m.substr(pos, w), A_BOLD);
    }
  } else if (view_ == View::kOverview) {
    draw_overview(top, bottom);
  } else if (view_ == View::kDetail) {
    const NodeRow* r = selected_row();
    std::vector<std::string> lines;
    if (r) {
      lines = node_detail_lines(*overview_, *r, alerts_ ? &*alerts_ : nullptr, width);
    } else {
      lines = {"the selected node is no longer listed (Esc: back)"};
    }
    draw_lines(lines, top, bottom, &detail_scroll_, 1);
  } else if (view_ == View::kMember) {
    std::vector<std::string> lines;
    if (!member_error_.empty()) lines.push_back("member '" + member_query_ + "': " + member_error_);
    if (member_) {
      if (member_matches_.size() > 1) {
        lines.push_back(std::to_string(member_matches_.size()) + " members match '" + member_query_ +
                        "'; showing the first (search by id for another)");
      }
      auto body = member_lines(*member_, width);
      lines.insert(lines.end(), body.begin(), body.end());
    } else if (member_error_.empty()) {
      lines.push_back("Member: press / (or m) and type a card number, a phone (+...) or a member id");
    }
    draw_lines(lines, top, bottom, &member_scroll_, 1);
  } else if (view_ == View::kAlerts) {
    std::vector<std::string> lines;
    if (alerts_) {
      lines = alerts_lines(*alerts_, overview_->names, alert_filter_, width);
    } else {
      lines = {"alerts are not available from this node"};
    }
    draw_lines(lines, top, bottom, &alerts_scroll_, 2);
  }
  draw_status_line();
  refresh();
}

bool Screen::on_prompt_key(int ch) {
  std::string* live = prompt_ == Prompt::kFilter ? &filter_ : prompt_ == Prompt::kAlertFilter ? &alert_filter_ : nullptr;
  if (ch == 27) {  // Esc
    if (live) live->clear();
    prompt_ = Prompt::kNone;
    return true;
  }
  if (ch == '\n' || ch == '\r' || ch == KEY_ENTER) {
    Prompt p = prompt_;
    prompt_ = Prompt::kNone;
    if (p == Prompt::kMember) search_member(prompt_text_);
    return true;
  }
  if (ch == KEY_BACKSPACE || ch == 127 || ch == 8) {
    if (!prompt_text_.empty()) prompt_text_.pop_back();
  } else if (ch >= 0x20 && ch < 0x7f && prompt_text_.size() < kPromptCharsMax) {
    prompt_text_.push_back(static_cast<char>(ch));
  }
  if (live) *live = prompt_text_;
  return true;
}

bool Screen::on_key(int ch) {
  if (ch == KEY_RESIZE) {
    clearok(curscr, TRUE);
    return true;
  }
  if (prompt_ != Prompt::kNone) return on_prompt_key(ch);
  if (help_) {
    help_ = false;
    return ch != 'q';
  }
  int* scroll = view_ == View::kDetail ? &detail_scroll_
                : view_ == View::kMember ? &member_scroll_
                : view_ == View::kAlerts ? &alerts_scroll_
                                         : nullptr;
  int page = std::max(1, LINES - 4);
  switch (ch) {
    case 'q':
    case 'Q': return false;
    case '?': help_ = true; break;
    case 'r':
      roster_ms_ = 0;  // also the roster
      refresh_data();
      break;
    case '\t':
      view_ = view_ == View::kOverview || view_ == View::kDetail ? View::kMember
              : view_ == View::kMember                           ? View::kAlerts
                                                                 : View::kOverview;
      break;
    case KEY_BTAB:
      view_ = view_ == View::kOverview || view_ == View::kDetail ? View::kAlerts
              : view_ == View::kAlerts                           ? View::kMember
                                                                 : View::kOverview;
      break;
    case 27:  // Esc
      if (view_ == View::kOverview) {
        filter_.clear();
      } else {
        view_ = View::kOverview;
      }
      break;
    case '\n':
    case '\r':
    case KEY_ENTER:
      if (view_ == View::kOverview && selected_row()) {
        view_ = View::kDetail;
        detail_scroll_ = 0;
      }
      break;
    case 'm':
      view_ = View::kMember;
      prompt_ = Prompt::kMember;
      prompt_text_.clear();
      break;
    case 'a': view_ = View::kAlerts; break;
    case 'o': view_ = View::kOverview; break;
    case '/':
      if (view_ == View::kMember) {
        prompt_ = Prompt::kMember;
        prompt_text_.clear();
      } else if (view_ == View::kAlerts) {
        prompt_ = Prompt::kAlertFilter;
        prompt_text_ = alert_filter_;
      } else {
        view_ = View::kOverview;
        prompt_ = Prompt::kFilter;
        prompt_text_ = filter_;
      }
      break;
    case KEY_UP:
    case 'k':
      if (scroll) {
        --*scroll;
      } else {
        move_selection(-1);
      }
      break;
    case KEY_DOWN:
    case 'j':
      if (scroll) {
        ++*scroll;
      } else {
        move_selection(1);
      }
      break;
    case KEY_PPAGE:
      if (scroll) {
        *scroll -= page;
      } else {
        move_selection(-page);
      }
      break;
    case KEY_NPAGE:
    case ' ':
      if (scroll) {
        *scroll += page;
      } else {
        move_selection(page);
      }
      break;
    case KEY_HOME:
    case 'g':
      if (scroll) {
        *scroll = 0;
      } else {
        move_selection(-1'000'000);
      }
      break;
    case KEY_END:
    case 'G':
      if (scroll) {
        *scroll = 1'000'000;  // clamped when drawn
      } else {
        move_selection(1'000'000);
      }
      break;
    default: break;
  }
  return true;
}

}  // namespace

void restore_terminal() {
  if (!g_curses_active) return;
  g_curses_active = false;
  endwin();
}

UiOutcome run_ui(const AdminClient& client, const UiOptions& options, volatile std::sig_atomic_t* stop) {
  UiOutcome out;
  SCREEN* screen = newterm(nullptr, stdout, stdin);
  if (!screen) {
    const char* term = std::getenv("TERM");
    out.terminal_error = std::string("cannot use the terminal (TERM=") + (term ? term : "unset") +
                         "); run it in a terminal, or use --once for scripts";
    return out;
  }
  set_term(screen);
  g_curses_active = true;
  UiOptions opts = options;
  cbreak();
  noecho();
  nonl();
  keypad(stdscr, TRUE);
  curs_set(0);
  set_escdelay(25);
  if (opts.color && has_colors()) {
    start_color();
    short background = use_default_colors() == OK ? -1 : COLOR_BLACK;
    init_pair(kPairProblem, COLOR_RED, background);
    init_pair(kPairTitle, COLOR_BLACK, COLOR_CYAN);
    init_pair(kPairStatus, COLOR_WHITE, COLOR_RED);
    init_pair(kPairGood, COLOR_GREEN, background);
  } else {
    opts.color = false;
  }

  Screen s(client, opts);
  s.draw();  // "connecting ..." at once, before the first (bounded, blocking) fetch
  using Clock = std::chrono::steady_clock;
  auto next_refresh = Clock::now();
  bool quit = false;
  while (!quit && !*stop) {
    if (Clock::now() >= next_refresh) {
      s.refresh_data();
      next_refresh = Clock::now() + std::chrono::milliseconds(opts.interval_ms);
      s.draw();
    }
    auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(next_refresh - Clock::now()).count();
    timeout(static_cast<int>(std::clamp<long long>(wait, 0, kKeyPollMs)));
    int ch = getch();
    if (ch == ERR) continue;
    // Handle every key already typed, then draw once.
    int handled = 0;
    while (ch != ERR && handled++ < 64) {
      if (!s.on_key(ch)) {
        quit = true;
        break;
      }
      timeout(0);
      ch = getch();
    }
    if (!quit) s.draw();
  }
  out = s.outcome();
  out.signal = *stop;
  restore_terminal();
  delscreen(screen);
  return out;
}

}  // namespace outpost::tui
