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

// mongosh throws on ok: 0 (other shells return it): one shape for both.
function command(db, cmd) {
  try {
    return db.runCommand(cmd);
  } catch (e) {
    return { ok: 0, codeName: e.codeName, errmsg: e.message };
  }
}

// The members as the set knows them (after a first run, rs.add may have changed them), else the new set's.
function configHosts() {
  const current = command(admin, { replSetGetConfig: 1 });
  if (current.ok) return current.config.members.map((m) => m.host);
  return Array.from({ length: members }, (_, i) => host(i));
}

const admin = connectAdmin(`mongodb://${host(0)}/?directConnection=true`);
const status = command(admin, { replSetGetStatus: 1 });
if (status.ok) {
  print(`replica set ${status.set} already initiated with ${status.members.length} member(s)`);
} else if (status.codeName === "NotYetInitialized") {
  const config = { _id: "rs0", members: [] };
  for (let i = 0; i < members; i++) config.members.push({ _id: i, host: host(i) });
  const initiated = command(admin, { replSetInitiate: config });
  if (!initiated.ok) throw new Error(`replSetInitiate: ${initiated.codeName} ${initiated.errmsg}`);
  print(`initiated rs0 with ${members} member(s)`);
} else {
  throw new Error(`replSetGetStatus: ${status.codeName}`);
}

// User management needs the primary, which may take a few seconds to be elected and need not be member 0
// on a later run: reconnect as a replica-set client, which follows whichever member is primary.
const hosts = configHosts();
const primary = connectAdmin(`mongodb://${hosts.join(",")}/?replicaSet=rs0`);
for (let attempt = 1; ; attempt++) {
  if (command(primary, { hello: 1 }).isWritablePrimary) break;
  if (attempt >= 60) throw new Error("no writable primary after 60 attempts");
  sleep(2000);
}

const roles = [{ role: "readWrite", db: env.PAYMENT_DB_NAME }];
// Majority, bounded: a member still syncing must not hang the Job (it fails and is retried instead).
const writeConcern = { w: "majority", wtimeout: 60000 };
if (primary.getUser(env.APP_USERNAME)) {
  primary.updateUser(env.APP_USERNAME, { pwd: env.APP_PASSWORD, roles }, writeConcern);
  print(`updated user ${env.APP_USERNAME}`);
} else {
  primary.createUser({ user: env.APP_USERNAME, pwd: env.APP_PASSWORD, roles }, writeConcern);
  print(`created user ${env.APP_USERNAME}`);
}
