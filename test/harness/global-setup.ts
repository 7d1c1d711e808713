// Starts shared services for the test run (the Firestore emulator is added by the store suites' harness).
export default async function globalSetup(): Promise<void> {}
