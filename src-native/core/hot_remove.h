// Hot removal of bdevs whose device went away (an NVMe drive pulled,
// unbound or removed from the PCI bus). Reactors notice it first (I/O fails
// with -ENODEV) but must never block, and removing namespaces is control
// plane work (subsystem locks, AENs to every controller); so they post here,
// and one helper thread owned by the Target does the removal through a
// handler. The same thread watches the device nodes (inotify on their
// directories), so a device that disappears while idle is noticed too.
//
// The thread starts with the first watched bdev; a target without removable
// bdevs has none. stop() joins it; the handler never runs afterwards. The
// owner (Target) calls stop() before it lets go of its reference, so the
// references bdevs hold (on_gone) never make the helper thread the last
// owner.
#pragma once

#include <sys/types.h>

#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "bdev/bdev.h"

namespace nvmf {

class HotRemover : public std::enable_shared_from_this<HotRemover> {
 public:
  // Runs on the helper thread, once per bdev whose device is gone.
  using Handler = std::function<void(const std::shared_ptr<Bdev>&)>;
  explicit HotRemover(Handler h);
  ~HotRemover();  // stop()
  HotRemover(const HotRemover&) = delete;
  HotRemover& operator=(const HotRemover&) = delete;

  // Control plane, before `b` is published: watch b->info().path (a device
  // node) and set b->on_gone. The HotRemover must be owned by a shared_ptr.
  // Returns -errno when the helper thread or the watch cannot be set up.
  int watch(const std::shared_ptr<Bdev>& b);
  // Any thread, never blocks for long: the device of `b` is gone (`sure`),
  // or may be (its node is checked). Dropped after stop().
  void report(const std::weak_ptr<Bdev>& b, bool sure);
  // Joins the helper thread. Idempotent; never from the handler.
  void stop();

 private:
  struct Watched {
    std::weak_ptr<Bdev> bdev;
    std::string path;
    dev_t rdev = 0;
    bool removed = false;
  };
  struct Report {
    std::weak_ptr<Bdev> bdev;
    bool sure;
  };

  int start_locked();
  void run();
  void drain_inotify(bool* check_all);
  bool node_gone(const Watched& w) const;

  Handler handler_;
  std::mutex mu_;  // guards everything below
  bool stopped_ = false;
  std::thread thread_;
  int ino_fd_ = -1;
  int wake_fd_ = -1;  // eventfd: reports and stop
  std::map<int, std::string> dirs_;  // inotify watch descriptor -> directory
  std::vector<Watched> watched_;
  std::vector<Report> reports_;
};

}  // namespace nvmf
