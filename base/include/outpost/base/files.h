// Small file-system helpers every module shares. Thread-safe (they only make system calls).
#pragma once

#include <string>

#include "outpost/base/status.h"

namespace outpost {

// Makes the entries of directory `dir` durable (fsync of the directory): after creating,
// renaming or removing a file in it, the change survives a power loss only once this returned
// OK. kIoError naming the directory otherwise.
Status fsync_dir(const std::string& dir);
// The same for the directory holding `path` ("." for a bare file name).
Status fsync_parent_dir(const std::string& path);

}  // namespace outpost
