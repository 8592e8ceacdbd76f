// Loading a report's input from a replica, in one read snapshot so that every report of one run
// sees one state of the data (docs/reports.md, "What a report used").
#include <algorithm>

#include "outpost/node/reports.h"
#include "outpost/storage/store.h"
#include "outpost/sync/hlc.h"
#include "outpost/sync/roster.h"

namespace outpost::node::reports {

Result<ReportInput> load_report_input(storage::Store& store, const sync::Roster* roster,
                                      const sync::ProgramRules& rules) {
  ReportInput in;
  in.rules = rules;
  if (roster != nullptr) {
    for (const auto& sc : roster->certificates) in.node_names[sc.cert.node_id] = sc.cert.name;
  }
  OUTPOST_ASSIGN_OR_RETURN(storage::ReadSnapshot snap, storage::ReadSnapshot::begin(store.db()));
  OUTPOST_ASSIGN_OR_RETURN(in.source.version_vector, store.version_vector());
  OUTPOST_ASSIGN_OR_RETURN(in.source.ops, store.op_count());
  OUTPOST_ASSIGN_OR_RETURN(std::vector<std::uint64_t> head_versions,
                           store.tree_head_set_versions());
  if (!head_versions.empty()) {
    in.source.tree_head_version = *std::max_element(head_versions.begin(), head_versions.end());
  }
  OUTPOST_ASSIGN_OR_RETURN(auto enrolled, store.enroll_times());
  OUTPOST_ASSIGN_OR_RETURN(auto members, store.load_all_members());
  in.members.reserve(members.size());
  for (auto& [id, state] : members) {
    MemberFacts m;
    m.id = id;
    m.card = state.field(sync::Field::kCard);
    m.name = state.field(sync::Field::kName);
    if (auto it = enrolled.find(id); it != enrolled.end())
      m.enrolled_month = sync::month_index(it->second);
    m.state = std::move(state);
    in.members.push_back(std::move(m));
  }
  return in;
}

}  // namespace outpost::node::reports
