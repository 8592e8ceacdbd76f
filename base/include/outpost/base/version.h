// The software version of every Outpost binary, reported on the admin API and in sync HELLOs.
// Keep it equal to project(VERSION) in the top-level CMakeLists.txt. Header-only constant.
#pragma once

namespace outpost {

inline constexpr const char* kSoftwareVersion = "0.1.0";

}  // namespace outpost
