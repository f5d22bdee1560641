// Result<T>: a T or the Status that explains why there is none. Like absl::StatusOr.
// Accessing value() of an error Result is a programming error and aborts.
#pragma once

#include <cstdlib>
#include <utility>
#include <variant>

#include "base/status.h"

namespace vmvault {

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {  // NOLINT: implicit by design
    if (std::get<Status>(v_).ok()) std::abort();  // an OK status carries no value
  }

  bool ok() const { return std::holds_alternative<T>(v_); }
  Status status() const { return ok() ? Status::OK() : std::get<Status>(v_); }

  T& value() & { Check(); return std::get<T>(v_); }
  const T& value() const& { Check(); return std::get<T>(v_); }
  T&& value() && { Check(); return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  void Check() const {
    if (!ok()) std::abort();
  }
  std::variant<T, Status> v_;
};

}  // namespace vmvault

#define VV_CONCAT_INNER_(a, b) a##b
#define VV_CONCAT_(a, b) VV_CONCAT_INNER_(a, b)
#define VV_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                              \
  if (!tmp.ok()) return tmp.status();             \
  lhs = std::move(tmp).value()

// VV_ASSIGN_OR_RETURN(auto x, Foo()); declares x from a Result or returns its Status.
#define VV_ASSIGN_OR_RETURN(lhs, expr) \
  VV_ASSIGN_OR_RETURN_IMPL_(VV_CONCAT_(vv_result_, __LINE__), lhs, expr)
