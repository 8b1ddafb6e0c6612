#include "proxy/commands/registry.h"

#include <array>

#include "proxy/commands/families.h"

namespace keyfence::proxy::commands {

using tenancy::Local;

namespace {

struct Entry {
  Local local;
  Handler handler;
};

// Every local command and its handler, by family.
constexpr Entry kTable[] = {
    // handshake.cc
    {Local::kPing, Ping},
    {Local::kEcho, Echo},
    {Local::kQuit, Quit},
    {Local::kReset, Reset},
    {Local::kSelect, Select},
    {Local::kHello, Hello},
    {Local::kAuth, Auth},
    // client.cc
    {Local::kClientSetName, Client},
    {Local::kClientGetName, Client},
    {Local::kClientId, Client},
    {Local::kClientInfo, Client},
    {Local::kClientList, Client},
    {Local::kClientReply, Client},
    {Local::kClientKill, Client},
    {Local::kClientUnblock, Client},
    // introspection.cc
    {Local::kCommand, CommandDocs},
    {Local::kCommandCount, CommandDocs},
    {Local::kCommandInfo, CommandDocs},
    {Local::kCommandDocs, CommandDocs},
    {Local::kCommandList, CommandDocs},
    {Local::kCommandGetKeys, CommandGetKeys},
    {Local::kInfo, Info},
    {Local::kConfigSet, ConfigSet},
    {Local::kClientTracking, ClientTracking},
    {Local::kClientCaching, ClientCaching},
    {Local::kClientGetRedir, ClientGetRedir},
    {Local::kClientTrackingInfo, ClientTrackingInfo},
    {Local::kConfigGet, ConfigGet},
    {Local::kCluster, Cluster},
    {Local::kReadOnly, Ok},
    {Local::kReadWrite, Ok},
    {Local::kFunctionFlush, FunctionFlush},
    // keyspace.cc
    {Local::kKeys, Keys},
    {Local::kScan, Scan},
    {Local::kDbSize, WalkNamespace},
    {Local::kFlushDb, WalkNamespace},
    {Local::kRandomKey, WalkNamespace},
    // pubsub.cc
    {Local::kPubsubChannels, PubsubChannels},
};

constexpr size_t kNumLocal = static_cast<size_t>(Local::kPubsubChannels) + 1;

constexpr std::array<Handler, kNumLocal> BuildIndex() {
  std::array<Handler, kNumLocal> index{};
  for (const Entry& e : kTable) index[static_cast<size_t>(e.local)] = e.handler;
  return index;
}

constexpr std::array<Handler, kNumLocal> kIndex = BuildIndex();

}  // namespace

Handler LocalHandler(Local what) {
  size_t i = static_cast<size_t>(what);
  return i < kIndex.size() ? kIndex[i] : nullptr;
}

}  // namespace keyfence::proxy::commands
