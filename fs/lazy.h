// Lazy<T>: a value built on first use and then shared, for views that lay themselves
// out only when someone looks at them (fs/view.h, View::Load). A failed build is not
// cached: the next Get() tries again, so a transient catalog error does not stick.
//
// Thread-safe: concurrent first calls build once; later calls are one atomic load.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>

#include "base/result.h"

namespace vmvault::fs {

template <typename T>
class Lazy {
 public:
  using Maker = std::function<Result<std::shared_ptr<const T>>()>;
  explicit Lazy(Maker make) : make_(std::move(make)) {}

  Result<const T*> Get() const {
    if (const T* v = ready_.load(std::memory_order_acquire)) return v;
    VV_ASSIGN_OR_RETURN(std::shared_ptr<const T> v, GetShared());
    return v.get();
  }

  // The value if it has been built, else null. Never builds.
  const T* Peek() const { return ready_.load(std::memory_order_acquire); }

  // The value as a shared pointer (one more atomic reference count than Get()).
  Result<std::shared_ptr<const T>> GetShared() const {
    std::lock_guard<std::mutex> lock(mu_);
    if (!value_) {
      VV_ASSIGN_OR_RETURN(value_, make_());
      ready_.store(value_.get(), std::memory_order_release);
    }
    return value_;
  }

 private:
  const Maker make_;
  mutable std::mutex mu_;
  mutable std::shared_ptr<const T> value_;  // GUARDED_BY(mu_) until ready_ is set
  mutable std::atomic<const T*> ready_{nullptr};
};

}  // namespace vmvault::fs
