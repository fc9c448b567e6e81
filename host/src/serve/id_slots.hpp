// A set of numbered entries found by their run id: open addressing over the numbers (4 bytes a slot, at most
// 70% full, about 9 bytes an entry), where a map from strings would cost more than the entry it finds. The
// ids themselves stay with the caller, which says how to read the id of a number (`id_of`); a number is added
// once and removed before it is reused.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <random>
#include <string_view>
#include <vector>

namespace cp::serve {

class IdSlots {
 public:
  template <class IdOf>
  std::optional<uint32_t> find(std::string_view id, IdOf id_of) const {
    if (slots_.empty()) return std::nullopt;
    const size_t mask = slots_.size() - 1;
    for (size_t i = hash(id) & mask;; i = (i + 1) & mask) {
      const uint32_t n = slots_[i];
      if (n == kEmpty) return std::nullopt;
      if (n != kTomb && id_of(n) == id) return n;
    }
  }

  template <class IdOf>
  void add(uint32_t n, IdOf id_of) {
    if (full()) grow(id_of);
    place(n, id_of(n));
    ++live_;
  }

  // add(), unless an entry of the same id is there already (then nothing changes and false is returned).
  template <class IdOf>
  bool add_unique(uint32_t n, IdOf id_of) {
    if (full()) grow(id_of);
    const std::string_view id = id_of(n);
    const size_t mask = slots_.size() - 1;
    size_t i = hash(id) & mask, free = slots_.size();
    for (; slots_[i] != kEmpty; i = (i + 1) & mask) {
      if (slots_[i] == kTomb) {
        if (free == slots_.size()) free = i;
      } else if (id_of(slots_[i]) == id) {
        return false;
      }
    }
    if (free == slots_.size()) {
      free = i;
      ++used_;
    }
    slots_[free] = n;
    ++live_;
    return true;
  }

  template <class IdOf>
  void remove(uint32_t n, IdOf id_of) {
    if (slots_.empty()) return;
    const size_t mask = slots_.size() - 1;
    for (size_t i = hash(id_of(n)) & mask;; i = (i + 1) & mask) {
      if (slots_[i] == kEmpty) return;
      if (slots_[i] == n) {
        slots_[i] = kTomb;  // the probe chains through it stay whole
        --live_;
        return;
      }
    }
  }

  // Room for `n` entries without growing (a bulk fill knows how many will come).
  template <class IdOf>
  void reserve(size_t n, IdOf id_of) {
    if ((n + 1) * 10 <= slots_.size() * 7) return;
    const size_t keep = live_;
    live_ = n;
    grow(id_of);
    live_ = keep;
  }

  void clear() {
    slots_.clear();
    used_ = live_ = 0;
  }

 private:
  static constexpr uint32_t kEmpty = 0xFFFFFFFFu, kTomb = 0xFFFFFFFEu;
  // The standard hash, mixed with a seed drawn once per process: run ids chosen so that their standard
  // hashes share their low bits (cheap to find, as that hash is unseeded) would otherwise fill one probe
  // chain and make every insert walk it.
  static size_t hash(std::string_view id) {
    static const uint64_t seed = (uint64_t{std::random_device{}()} << 32) ^ std::random_device{}();
    uint64_t h = std::hash<std::string_view>{}(id) ^ seed;
    h ^= h >> 33;  // murmur3's finalizer: every input bit reaches every low bit
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return static_cast<size_t>(h);
  }
  bool full() const { return (used_ + 1) * 10 > slots_.size() * 7; }

  void place(uint32_t n, std::string_view id) {
    const size_t mask = slots_.size() - 1;
    size_t i = hash(id) & mask;
    while (slots_[i] != kEmpty && slots_[i] != kTomb) i = (i + 1) & mask;
    if (slots_[i] == kEmpty) ++used_;
    slots_[i] = n;
  }

  // Room for twice the live entries (tombstones are dropped), so a table that grew is at most half full.
  template <class IdOf>
  void grow(IdOf id_of) {
    std::vector<uint32_t> old;
    old.swap(slots_);
    size_t size = 16;
    while (size < (live_ + 1) * 2) size *= 2;
    slots_.assign(size, kEmpty);
    used_ = 0;
    for (uint32_t n : old)
      if (n != kEmpty && n != kTomb) place(n, id_of(n));
  }

  std::vector<uint32_t> slots_;
  size_t used_ = 0;  // entries and tombstones
  size_t live_ = 0;
};

}  // namespace cp::serve
