// Check(cond): a failed property in a fuzz target is a crash libFuzzer reports and keeps
// the input of.
#pragma once

namespace vmvault::fuzz {

inline void Check(bool ok) {
  if (!ok) __builtin_trap();
}

}  // namespace vmvault::fuzz
