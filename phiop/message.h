// message.h: the error strings phiop's C entry points return. A C entry point
// reports failure as a malloc'd, NUL-terminated copy of the message (nullptr means
// success); the Go side turns it into an error and frees it with C.free.
#ifndef PHIOP_MESSAGE_H
#define PHIOP_MESSAGE_H

#include <cstdlib>
#include <cstring>
#include <string>

namespace phiop {

// copy_message returns msg as a malloc'd C string for the Go caller to free, or
// nullptr when even that allocation fails (the caller then reports that no
// message could be made).
inline char* copy_message(const std::string& msg) {
  char* out = static_cast<char*>(std::malloc(msg.size() + 1));
  if (out != nullptr) std::memcpy(out, msg.c_str(), msg.size() + 1);
  return out;
}

}  // namespace phiop

#endif  // PHIOP_MESSAGE_H
