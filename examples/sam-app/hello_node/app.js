// The greeting by name, on the HTTP API (/hi/{name}).
exports.handler = async (event) => ({
  statusCode: 200,
  body: JSON.stringify({ message: `${process.env.GREETING} ${event.pathParameters.name}` }),
});
