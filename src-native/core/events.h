// Events and results travel from native threads to JavaScript through a sink
// the addon implements with one ThreadSafeFunction per target. The core never
// includes N-API headers, so it can be unit-tested and fuzzed on its own.
#pragma once

#include <string>

namespace nvmf {

class EventSink {
 public:
  virtual ~EventSink() = default;
  // Thread-safe, never blocks. `json` is a JSON object text. Dropped once the
  // JavaScript side is gone.
  virtual void emit(const char* name, std::string json) = 0;
};

// Minimal JSON string escaping for event payloads.
std::string json_str(const std::string& s);

}  // namespace nvmf
