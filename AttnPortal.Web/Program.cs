using AttnPortal.Web;

var app = PortalApp.Build(args);
await AttnPortal.Web.Services.PortalStartup.RunAsync(app.Services);
await app.RunAsync();

public partial class Program;
