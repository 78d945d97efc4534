// Run by the mongodb-init Job with mongosh --nodb. Idempotent: initiates rs0 once (members
// mongodb-0..N-1.mongodb-headless:27017), waits for a primary, then creates or updates the application
// user with readWrite on PAYMENT_DB_NAME only. Credentials come from the environment, never arguments.
const env = process.env;
const members = parseInt(env.MONGODB_REPLICAS, 10);
const host = (i) => `mongodb-${i}.mongodb-headless:27017`;

function connectAdmin(uri) {
  for (let attempt = 1; attempt <= 60; attempt++) {
    try {
      const admin = new Mongo(uri).getDB("admin");
      admin.auth(env.ROOT_USERNAME, env.ROOT_PASSWORD);
      return admin;
    } catch (e) {
      print(`waiting for ${uri}: ${e.codeName || e.message} (${attempt}/60)`);
      sleep(5000);
    }
  }
  throw new Error(`cannot reach ${uri}`);
}

let admin = connectAdmin(`mongodb://${host(0)}/?directConnection=true`);
const status = admin.runCommand({ replSetGetStatus: 1 });
if (status.ok) {
  print(`replica set ${status.set} already initiated with ${status.members.length} member(s)`);
} else if (status.codeName === "NotYetInitialized") {
  const config = { _id: "rs0", members: [] };
  for (let i = 0; i < members; i++) config.members.push({ _id: i, host: host(i) });
  printjson(admin.runCommand({ replSetInitiate: config }));
} else {
  throw new Error(`replSetGetStatus: ${status.codeName}`);
}

// The primary may take a few seconds to be elected; user management needs it.
for (let attempt = 1; ; attempt++) {
  if (admin.runCommand({ hello: 1 }).isWritablePrimary) break;
  if (attempt >= 60) throw new Error("no writable primary after 120 s");
  sleep(2000);
}

const roles = [{ role: "readWrite", db: env.PAYMENT_DB_NAME }];
if (admin.getUser(env.APP_USERNAME)) {
  admin.updateUser(env.APP_USERNAME, { pwd: env.APP_PASSWORD, roles });
  print(`updated user ${env.APP_USERNAME}`);
} else {
  admin.createUser({ user: env.APP_USERNAME, pwd: env.APP_PASSWORD, roles });
  print(`created user ${env.APP_USERNAME}`);
}
