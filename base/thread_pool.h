// ThreadPool: a fixed set of worker threads running queued tasks in FIFO order.
// Submit() is thread-safe. The destructor finishes the queued tasks, then joins.
// Tasks report failure through their own state; an exception a task throws is
// discarded so it cannot take the process down (e.g. bad_alloc during read-ahead).
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace vmvault {

class ThreadPool {
 public:
  explicit ThreadPool(size_t threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  void Submit(std::function<void()> task);
  size_t size() const { return workers_.size(); }

  // The number of hardware threads, at least 1.
  static size_t HardwareThreads();

 private:
  void Run();

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;  // GUARDED_BY(mu_)
  bool stopping_ = false;                    // GUARDED_BY(mu_)
  std::vector<std::thread> workers_;
};

}  // namespace vmvault
