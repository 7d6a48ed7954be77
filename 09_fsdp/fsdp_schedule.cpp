#include "09_fsdp/fsdp_schedule.hpp"

#include <nlohmann/json.hpp>

#include <cerrno>
#include <cstring>
#include <fstream>

#include "common/error.hpp"

namespace ladder::stage09 {

std::string event_name(FsdpEventKind kind) {
  switch (kind) {
    case FsdpEventKind::GatherIssued: return "gather issued";
    case FsdpEventKind::GatherWaited: return "gather waited";
    case FsdpEventKind::Forward: return "forward";
    case FsdpEventKind::Backward: return "backward";
    case FsdpEventKind::ReduceScatterIssued: return "reduce-scatter issued";
    case FsdpEventKind::Freed: return "freed";
  }
  return "unknown";
}

void FsdpSchedule::start() {
  events_.clear();
  start_ = std::chrono::steady_clock::now();
  recording_ = true;
}

void FsdpSchedule::note(FsdpEventKind kind, int unit) {
  if (!recording_) return;
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  events_.push_back({kind, unit, seconds});
}

std::vector<std::string> FsdpSchedule::lines() const {
  std::vector<std::string> lines;
  for (const FsdpEvent& event : events_) lines.push_back(event_name(event.kind) + " " + std::to_string(event.unit));
  return lines;
}

void FsdpSchedule::write_jsonl(const std::string& path) const {
  std::ofstream out(path, std::ios::out | std::ios::trunc);
  LADDER_CHECK(out.is_open(), "--timeline ", path, ": cannot create the file: ", std::strerror(errno));
  for (const FsdpEvent& event : events_) {
    out << nlohmann::json{{"event", event_name(event.kind)}, {"unit", event.unit}, {"seconds", event.seconds}}.dump()
        << '\n';
  }
  LADDER_CHECK(out.good(), "--timeline ", path, ": writing failed: ", std::strerror(errno));
}

}  // namespace ladder::stage09
