package io.modelops.mlc.engine;

import org.camunda.bpm.engine.rest.security.auth.ProcessEngineAuthenticationFilter;
import org.camunda.bpm.engine.rest.security.auth.impl.HttpBasicAuthenticationProvider;
import org.springframework.boot.SpringApplication;
import org.springframework.boot.autoconfigure.SpringBootApplication;
import org.springframework.boot.autoconfigure.condition.ConditionalOnProperty;
import org.springframework.boot.web.servlet.FilterRegistrationBean;
import org.springframework.context.annotation.Bean;

/**
 * Stock Camunda 7 engine, REST API and webapps, as assembled by the Spring Boot starters.
 * The only configuration in code is Camunda's own REST authentication filter, switched on
 * by MLC_ENGINE_AUTH=basic (the same filter Camunda Run registers for its auth option).
 */
@SpringBootApplication
public class MlcEngineApplication {

  public static void main(String[] args) {
    SpringApplication.run(MlcEngineApplication.class, args);
  }

  @Bean
  @ConditionalOnProperty(name = "mlc.engine.auth", havingValue = "basic")
  public FilterRegistrationBean<ProcessEngineAuthenticationFilter> restBasicAuthFilter() {
    FilterRegistrationBean<ProcessEngineAuthenticationFilter> reg =
        new FilterRegistrationBean<>(new ProcessEngineAuthenticationFilter());
    reg.setName("camunda-rest-auth");
    reg.addInitParameter("authentication-provider", HttpBasicAuthenticationProvider.class.getName());
    reg.addUrlPatterns("/engine-rest/*");
    return reg;
  }
}
