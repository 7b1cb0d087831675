/// The platform clients this build serves. `initialize` advertises exactly these in its capabilities.
public func makePlatformClients(_ environment: PlatformEnvironment) -> [Platform: any PlatformClient] {
  let clients: [any PlatformClient] = [
    FacebookClient(environment: environment),
    InstagramClient(environment: environment),
    LinkedInClient(environment: environment),
    WhatsAppClient(environment: environment),
    YouTubeClient(environment: environment),
  ]
  return Dictionary(uniqueKeysWithValues: clients.map { ($0.platform, $0) })
}
